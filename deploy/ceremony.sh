#!/bin/sh
# The key ceremony for the compose and Kubernetes networks (4 validators, the central
# bank, two banks, the regulator and three clients), every step as operators on
# separate hosts would run it: each directory under HOSTS_DIR keeps its own private
# keys, and only its request.json goes to the central bank's desk. On real hosts, run
# each step on its own machine (see docs/deploy.md).
#
#   deploy/ceremony.sh HOSTS_DIR
#       deploy/compose/hosts for compose; deploy/k8s/hosts, with
#       VALIDATOR_HOST=validator-%d-0.validators, for Kubernetes
#
# STRAITS names the CLI (default: straits on PATH); VALIDATOR_HOST is the printf format
# of validator i's host name (default validator-%d, the compose service). Run as root,
# the nodes' directories are given to the image's user (uid 10001), which reads them.
set -eu
HOSTS=${1:?usage: ceremony.sh HOSTS_DIR}
VALIDATOR_HOST=${VALIDATOR_HOST:-validator-%d}
STRAITS=${STRAITS:-straits}
CHAIN_ID=${CHAIN_ID:-straits-compose}
DESK="$HOSTS/.central-bank-desk"
if [ -e "$HOSTS/validator-1/ledger.key" ]; then
    echo "a network already exists in $HOSTS" >&2
    exit 1
fi
mkdir -p "$DESK/requests"

# 1. Every host makes its keys; the address is where its peers reach it.
generate() {  # directory id role [address]
    $STRAITS keys generate --dir "$HOSTS/$1" --id "$2" --role "$3" --address "${4:-}" \
        > /dev/null
    cp "$HOSTS/$1/request.json" "$DESK/requests/$1.json"
}
for i in 1 2 3 4; do
    # shellcheck disable=SC2059  # the format is the point
    generate "validator-$i" "validator-$i" validator "$(printf "$VALIDATOR_HOST" "$i"):7000"
done
generate central-bank central-bank central_bank central-bank:7000
generate bank-a bank-a bank bank-a:7000
generate bank-b bank-b bank bank-b:7000
generate regulator regulator regulator
# Clients: a bank's payment system and the central bank's operators, outside the network.
generate bank-a-client bank-a client
generate bank-b-client bank-b client
generate central-bank-client central-bank client

# 2.-4. The central bank signs, founds the network and writes the bundles.
$STRAITS pki init --dir "$HOSTS/.ca" --chain-id "$CHAIN_ID" > /dev/null
$STRAITS pki sign --ca-dir "$HOSTS/.ca" --out "$DESK/certs" "$DESK"/requests/*.json > /dev/null
$STRAITS genesis assemble --chain-id "$CHAIN_ID" --out "$DESK/genesis.json" \
    "$DESK"/requests/*.json
$STRAITS bundle --genesis "$DESK/genesis.json" --ca "$HOSTS/.ca/ca.crt" \
    --certs "$DESK/certs" --out "$DESK/bundles" --data-dir /var/lib/straits \
    "$DESK"/requests/*.json > /dev/null

# Each host installs its bundle beside its keys.
for request in "$DESK"/requests/*.json; do
    host=$(basename "$request" .json)
    case "$host" in
        *-client) bundle="${host%-client}.client" ;;
        *) bundle="$host" ;;
    esac
    cp "$DESK/bundles/$bundle"/* "$HOSTS/$host/"
done
if [ "$(id -u)" = 0 ]; then
    for node in validator-1 validator-2 validator-3 validator-4 central-bank bank-a bank-b; do
        chown -R 10001:10001 "$HOSTS/$node"
    done
fi
echo "keys, certificates and configs of every host written to $HOSTS"
