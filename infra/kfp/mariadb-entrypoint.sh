#!/bin/sh
# Entrypoint of the mysql:8.4 stand-in (Debian's MariaDB 10.11), for Kubeflow Pipelines' manifests,
# which run the image with MySQL's arguments and MYSQL_ALLOW_EMPTY_PASSWORD. It drops the arguments
# only MySQL knows, creates the data directory on first start with root@'%' (empty password when
# MYSQL_ALLOW_EMPTY_PASSWORD is set, else MYSQL_ROOT_PASSWORD), and passes the rest to mariadbd.
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- mariadbd "$@"
fi
case "$1" in
    mysqld|mariadbd) shift ;;
    *) exec "$@" ;;
esac

datadir=/var/lib/mysql
next_is_datadir=
for arg do
    shift
    if [ -n "$next_is_datadir" ]; then
        datadir=$arg
        next_is_datadir=
    fi
    case "$arg" in
        --authentication-policy=*|--mysql-native-password|--mysql-native-password=*|--default-authentication-plugin=*)
            echo "mariadb-entrypoint: dropping MySQL-only option $arg" >&2
            continue ;;
        --datadir=*) datadir=${arg#--datadir=} ;;
        --datadir) next_is_datadir=1 ;;
    esac
    set -- "$@" "$arg"
done

if [ ! -d "$datadir/mysql" ]; then
    if [ -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ] && [ -z "${MYSQL_ROOT_PASSWORD:-}" ]; then
        echo "mariadb-entrypoint: $datadir is empty: set MYSQL_ALLOW_EMPTY_PASSWORD or MYSQL_ROOT_PASSWORD" >&2
        exit 1
    fi
    echo "mariadb-entrypoint: initialising $datadir" >&2
    mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=normal --skip-test-db \
        --skip-name-resolve >/dev/null
    socket=/tmp/mariadb-init.sock
    mariadbd --datadir="$datadir" --skip-networking --socket="$socket" --skip-log-bin &
    pid=$!
    tries=0
    until mariadb --protocol=socket --socket="$socket" -uroot -e 'SELECT 1' >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -ge 120 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "mariadb-entrypoint: the first-start server did not answer" >&2
            exit 1
        fi
        sleep 0.5
    done
    password=${MYSQL_ROOT_PASSWORD:-}
    if [ -n "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]; then
        password=
    fi
    escaped=$(printf '%s' "$password" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g")
    mariadb --protocol=socket --socket="$socket" -uroot <<SQL
CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$escaped';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED BY '$escaped';
FLUSH PRIVILEGES;
SQL
    kill "$pid"
    wait "$pid" || true
    echo "mariadb-entrypoint: $datadir ready" >&2
fi

exec mariadbd "$@"
