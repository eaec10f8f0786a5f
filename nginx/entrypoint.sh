#!/bin/sh
# shellcheck disable=SC2016  # the single-quoted ${NAME}s are meant literally
# amo-hub's nginx entrypoint (nginx:1.27-alpine, see docker-compose.yml).
#
# Picks a template from this folder, renders it into /etc/nginx/conf.d/default.conf and
# starts nginx in the foreground. The template is, as in the old service:
#   NGX_TEMPLATE_CONF  when set: a file in this folder, given as ./nginx/NAME (the old
#                      .env's form), nginx/NAME, NAME, or a path that exists in the container;
#   else               nginx.mirror-template.conf when MIRROR_ZDRAV=1,
#   else               nginx.conf.template.
# Only the variables listed in SUBST_VARS are substituted (envsubst is given that list),
# so nginx's own $variables survive. Each one the template uses must be set.
#
# Usage: entrypoint.sh                  render, then exec nginx -g 'daemon off;'
#        entrypoint.sh CMD [ARG...]     render, then exec CMD (e.g. nginx -t)
#        entrypoint.sh --render-only    print the rendered config to stdout, start nothing
# NGX_OUTPUT_CONF changes where the config is written (default below).
set -eu

SUBST_VARS="NGX_PORT NGX_SERVER_NAME KEEPALIVE_TIMEOUT MIRROR_ZDRAV MIRROR_TARGET NGX_RESOLVER HUB_UPSTREAM
NGX_LIMIT_RATE NGX_LIMIT_BURST NGX_LIMIT_CONN SSL_CERT SSL_KEY NGX_ACCESS_LOG HUB_ADMIN_PATH
NGX_ADMIN_ACCESS"
PLAIN_TEMPLATE=nginx.conf.template
MIRROR_TEMPLATE=nginx.mirror-template.conf
# Where docker-compose.yml mounts the certificate chain and key (SSL_FULLCHAIN_FILE and
# SSL_KEY_FILE on the host); SSL_CERT and SSL_KEY change that (e.g. nginx outside Docker).
SSL_CERT=${SSL_CERT:-/etc/nginx/ssl/fullchain.pem}
SSL_KEY=${SSL_KEY:-/etc/nginx/ssl/privkey.pem}

NGINX_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
OUTPUT=${NGX_OUTPUT_CONF:-/etc/nginx/conf.d/default.conf}

say() { echo "amo-hub nginx: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

render_only=0
if [ "${1:-}" = "--render-only" ]; then
    render_only=1
    shift
fi

# 1/0 from the old service's 0/1 (true/false, yes/no, on/off accepted too); empty stays empty.
flag() {
    case $(printf '%s' "$2" | tr '[:upper:]' '[:lower:]') in
        "") echo "" ;;
        1 | true | yes | on) echo 1 ;;
        0 | false | no | off) echo 0 ;;
        *) die "$1='$2': use 1 (on) or 0 (off)" ;;
    esac
}

# NGX_TEMPLATE_CONF as the old .env wrote it (./nginx/NAME, relative to the project) ->
# the file in the folder mounted here.
template_path() {
    case $1 in
        /*) candidate=$1 ;;
        ./nginx/* | nginx/*)
            rel=${1#./}
            candidate=$NGINX_DIR/${rel#nginx/}
            ;;
        ./*) candidate=$NGINX_DIR/${1#./} ;;
        *) candidate=$NGINX_DIR/$1 ;;
    esac
    if [ ! -f "$candidate" ] && [ -f "$NGINX_DIR/$(basename -- "$1")" ]; then
        # e.g. an absolute path on the host: the file of that name in the mounted folder.
        candidate=$NGINX_DIR/$(basename -- "$1")
    fi
    [ -f "$candidate" ] || die "NGX_TEMPLATE_CONF=$1: no such template in the mounted nginx/ folder" \
        "($NGINX_DIR has: $(cd "$NGINX_DIR" && echo *.template *.conf))." \
        "Put custom templates in nginx/ and name them ./nginx/NAME."
    echo "$candidate"
}

MIRROR_ZDRAV=$(flag MIRROR_ZDRAV "${MIRROR_ZDRAV:-}")
if [ -n "${NGX_TEMPLATE_CONF:-}" ]; then
    TEMPLATE=$(template_path "$NGX_TEMPLATE_CONF")
    why="NGX_TEMPLATE_CONF=$NGX_TEMPLATE_CONF"
elif [ "$MIRROR_ZDRAV" = 1 ]; then
    TEMPLATE=$NGINX_DIR/$MIRROR_TEMPLATE
    why="MIRROR_ZDRAV=1"
else
    TEMPLATE=$NGINX_DIR/$PLAIN_TEMPLATE
    why="default"
fi
[ -r "$TEMPLATE" ] || die "cannot read template $TEMPLATE"

# Defaults and normal forms of the derived values.
# A template chosen by name that mirrors is on unless MIRROR_ZDRAV=0 says otherwise.
mirror_asked=$MIRROR_ZDRAV
MIRROR_ZDRAV=${MIRROR_ZDRAV:-1}
MIRROR_TARGET=${MIRROR_TARGET:-}
MIRROR_TARGET=${MIRROR_TARGET%/}
HUB_UPSTREAM=${HUB_UPSTREAM:-web:8000}
# Abuse limits on /zdrav/ (per client address) and the access log (the image links
# /var/log/nginx/access.log to its stdout).
NGX_LIMIT_RATE=${NGX_LIMIT_RATE:-50r/s}
NGX_LIMIT_BURST=${NGX_LIMIT_BURST:-100}
NGX_LIMIT_CONN=${NGX_LIMIT_CONN:-32}
NGX_ACCESS_LOG=${NGX_ACCESS_LOG:-/var/log/nginx/access.log}
# The admin's prefix (as the hub's HUB_ADMIN_PATH) and who may reach it and /amocrm/:
# NGX_ADMIN_ALLOW, addresses or CIDRs separated by spaces or commas; "all" (the default).
HUB_ADMIN_PATH=${HUB_ADMIN_PATH:-admin/}
HUB_ADMIN_PATH=${HUB_ADMIN_PATH#/}
NGX_ADMIN_ALLOW=${NGX_ADMIN_ALLOW:-all}
if [ -z "${NGX_RESOLVER:-}" ]; then
    # Docker's embedded DNS (127.0.0.11) on a compose network; brackets for IPv6.
    NGX_RESOLVER=$(awk '$1 == "nameserver" { print ($2 ~ /:/) ? "[" $2 "]" : $2; exit }' \
        /etc/resolv.conf 2>/dev/null || true)
fi
case $NGX_LIMIT_RATE in
    *[!0-9]*r/s | *[!0-9]*r/m | r/[sm]) die "NGX_LIMIT_RATE='$NGX_LIMIT_RATE': give e.g. 50r/s or 600r/m" ;;
    *r/s | *r/m) ;;
    *) die "NGX_LIMIT_RATE='$NGX_LIMIT_RATE': give e.g. 50r/s or 600r/m" ;;
esac
for pair in "NGX_LIMIT_BURST=$NGX_LIMIT_BURST" "NGX_LIMIT_CONN=$NGX_LIMIT_CONN"; do
    case ${pair#*=} in
        '' | *[!0-9]* | 0) die "$pair: give a whole number of at least 1" ;;
    esac
done
case $HUB_ADMIN_PATH in
    */) ;;
    *) HUB_ADMIN_PATH=$HUB_ADMIN_PATH/ ;;
esac
case $HUB_ADMIN_PATH in
    *[!A-Za-z0-9_./-]* | /*) die "HUB_ADMIN_PATH='$HUB_ADMIN_PATH': give a path such as admin/ or ops-7f3a/" ;;
esac
NGX_ADMIN_ACCESS=""
for address in $(printf '%s' "$NGX_ADMIN_ALLOW" | tr ',' ' '); do
    case $address in
        all) NGX_ADMIN_ACCESS="allow all;" && break ;;
        *[!0-9A-Fa-f.:/]*) die "NGX_ADMIN_ALLOW: '$address' is not an address or CIDR (or all)" ;;
    esac
    NGX_ADMIN_ACCESS="${NGX_ADMIN_ACCESS}allow $address; "
done
case $NGX_ADMIN_ACCESS in
    "allow all;") ;;
    "") die "NGX_ADMIN_ALLOW is empty: give addresses or CIDRs, or all" ;;
    *) NGX_ADMIN_ACCESS="${NGX_ADMIN_ACCESS}deny all;" ;;
esac
export MIRROR_ZDRAV MIRROR_TARGET HUB_UPSTREAM NGX_RESOLVER NGX_LIMIT_RATE NGX_LIMIT_BURST \
    NGX_LIMIT_CONN NGX_ACCESS_LOG SSL_CERT SSL_KEY HUB_ADMIN_PATH NGX_ADMIN_ACCESS

# Every listed variable the template uses must have a value.
missing=""
for name in $SUBST_VARS; do
    if grep -qF "\${$name}" "$TEMPLATE"; then
        eval "value=\${$name:-}"
        [ -n "$value" ] || missing="$missing $name"
    fi
done
[ -z "$missing" ] || die "$(basename -- "$TEMPLATE") needs these variables, unset or empty:$missing." \
    "Set them in .env (see .env.example: NGX_PORT, NGX_SERVER_NAME, KEEPALIVE_TIMEOUT," \
    "MIRROR_TARGET; NGX_RESOLVER when /etc/resolv.conf names no nameserver)."

case ${NGX_PORT:-6000} in
    *[!0-9]*) die "NGX_PORT='$NGX_PORT' is not a port number" ;;
esac
case ${KEEPALIVE_TIMEOUT:-60} in
    *[!0-9smh\ ]* | [!0-9]*) die "KEEPALIVE_TIMEOUT='$KEEPALIVE_TIMEOUT': give seconds, e.g. 60" ;;
esac
case ${NGX_SERVER_NAME:-x} in
    *[[:space:]]*) die "NGX_SERVER_NAME='$NGX_SERVER_NAME': give one domain name" ;;
esac
if grep -qF '${MIRROR_TARGET}' "$TEMPLATE"; then
    case $MIRROR_TARGET in
        http://?* | https://?*) ;;
        *) die "MIRROR_TARGET='$MIRROR_TARGET': give a URL, e.g. https://mirror.example.ru" ;;
    esac
fi

# shellcheck disable=SC2086  # the list is split on purpose
rendered=$(envsubst "$(printf '${%s} ' $SUBST_VARS)" <"$TEMPLATE")

# An upper-case ${NAME} left outside comments is a variable this script does not know.
unknown=$(printf '%s\n' "$rendered" | grep -v '^[[:space:]]*#' |
    grep -o '\${[A-Z_][A-Z0-9_]*}' | sort -u | tr '\n' ' ' || true)
[ -z "$unknown" ] || die "$(basename -- "$TEMPLATE") uses $unknown which this entrypoint does" \
    "not substitute (it substitutes: $SUBST_VARS)."

mirror_note=""
if grep -qE '^[[:space:]]*mirror[[:space:]]' "$TEMPLATE"; then
    if [ "$MIRROR_ZDRAV" = 1 ]; then
        mirror_note="; /zdrav/ mirrored to $MIRROR_TARGET"
    else
        mirror_note="; mirror off (MIRROR_ZDRAV=0)"
    fi
elif [ "$mirror_asked" = 1 ]; then
    say "warning: MIRROR_ZDRAV=1, but NGX_TEMPLATE_CONF selects $(basename -- "$TEMPLATE")," \
        "which does not mirror: unset NGX_TEMPLATE_CONF, or set it to" \
        "./nginx/$MIRROR_TEMPLATE, to mirror /zdrav/ to MIRROR_TARGET."
fi

if [ "$render_only" = 1 ]; then
    printf '%s\n' "$rendered"
    exit 0
fi

if grep -qF '${SSL_CERT}' "$TEMPLATE"; then
    for file in "$SSL_CERT" "$SSL_KEY"; do
        if [ ! -f "$file" ] || [ ! -s "$file" ]; then
            die "$file is missing, empty or a directory: set SSL_FULLCHAIN_FILE and" \
                "SSL_KEY_FILE in .env to the certificate chain and key on the host" \
                "(docker-compose.yml mounts them here), or SSL_CERT and SSL_KEY to their paths."
        fi
    done
fi

mkdir -p "$(dirname -- "$OUTPUT")"
printf '%s\n' "$rendered" >"$OUTPUT.tmp"
mv "$OUTPUT.tmp" "$OUTPUT"
say "$(basename -- "$TEMPLATE") ($why) -> $OUTPUT$mirror_note"

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec nginx -g 'daemon off;'
