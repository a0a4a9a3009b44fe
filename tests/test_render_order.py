"""T0: the render's objects in kustomize's legacy kind order, the patches' added objects included."""

from __future__ import annotations

from infra.manifests.render import LEGACY_ORDER_FIRST, LEGACY_ORDER_LAST, into_legacy_order, legacy_rank


def _obj(kind: str, name: str) -> dict:
    return {"kind": kind, "metadata": {"name": name}}


def test_appended_objects_move_to_their_kinds_place_and_the_rest_keep_theirs() -> None:
    objects = [_obj("Namespace", "kubeflow"), _obj("PersistentVolumeClaim", "mysql"), _obj("Deployment", "mysql"),
               _obj("Gateway", "kubeflow"), _obj("ValidatingWebhookConfiguration", "v"),
               _obj("StorageClass", "static"), _obj("PersistentVolume", "mysql"), _obj("Certificate", "c")]
    into_legacy_order(objects)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Namespace", "kubeflow"), ("StorageClass", "static"), ("PersistentVolume", "mysql"),
        ("PersistentVolumeClaim", "mysql"), ("Deployment", "mysql"),
        ("Gateway", "kubeflow"), ("Certificate", "c"),  # kinds of neither list: between, as they came
        ("ValidatingWebhookConfiguration", "v")]


def test_ranks_follow_the_lists_with_other_kinds_between() -> None:
    assert [legacy_rank(k) for k in LEGACY_ORDER_FIRST] == list(range(len(LEGACY_ORDER_FIRST)))
    assert legacy_rank("Profile") == len(LEGACY_ORDER_FIRST)
    assert all(legacy_rank(k) > legacy_rank("Profile") for k in LEGACY_ORDER_LAST)
