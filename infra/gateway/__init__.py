"""The stand-in gateway: nginx in Istio's ingress gateway's place, where Envoy cannot run.

One configuration generator (`nginx.py`) serves the local target (processes on 127.0.0.1) and
clusters without Istio (`standin.py`: a Deployment the stack applies), so both behave alike.
"""
