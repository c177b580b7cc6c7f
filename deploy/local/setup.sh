#!/usr/bin/env bash
# Installs everything Vigil needs on a Debian 12 machine, idempotently:
#   1. the Debian packages of the build and the tests (apt-get update only when something is missing);
#   2. the pinned Apache Kafka broker from Maven Central into the git-ignored cache (.cache/).
# Usage: deploy/local/setup.sh [--kafka-only | --build-only]
#   --build-only: only the Debian packages of the build (the container build uses this), no Kafka
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$here/common.sh"

# What building Vigil needs (also what deploy/container/Containerfile installs, through
# `setup.sh --build-only`), then what the tests, the demo and the local broker need on top.
build_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  librdkafka-dev libtbb-dev libeigen3-dev libprotobuf-dev protobuf-compiler
  prometheus-cpp-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libedf-dev libhowardhinnant-date-dev tzdata libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev zlib1g-dev libcivetweb-dev
)
# chromium: the report screenshot test; prometheus: promtool and the server for the alerting-rule
# and scrape tests; openssl: the secure broker's throwaway CA; python3-yaml: the deployment
# consistency test; curl: the deployment integration tests; clang-format-14: the format check of
# the test command (.clang-format).
tool_packages=(
  openjdk-17-jre-headless maven python3 python3-venv python3-yaml
  chromium prometheus openssl curl clang-format-14
)
packages=("${build_packages[@]}" "${tool_packages[@]}")

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "Debian packages: all ${#packages[@]} present"
    return
  fi
  log "Debian packages: installing ${missing[*]}"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_kafka() {
  if [[ -f "$KAFKA_LIBS/.complete" ]]; then
    log "Kafka $KAFKA_VERSION: cached in ${KAFKA_LIBS#$root/}"
    return
  fi
  log "Kafka $KAFKA_VERSION: fetching the broker and its dependencies from Maven Central"
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  mvn -B -q -Dstyle.color=never -f "$here/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null
  touch "$KAFKA_LIBS/.complete"
}

case "${1:-}" in
  --kafka-only) install_kafka ;;
  --build-only) packages=("${build_packages[@]}"); install_packages ;;
  *) install_packages; install_kafka ;;
esac
