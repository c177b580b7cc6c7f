# Shared settings of the local scripts. Sourced, not run.
VIGIL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA_VERSION="3.9.1"  # keep in step with deploy/local/kafka/pom.xml
VIGIL_CACHE="${VIGIL_CACHE:-$VIGIL_ROOT/.cache}"
KAFKA_LIBS="$VIGIL_CACHE/kafka-$KAFKA_VERSION/libs"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
