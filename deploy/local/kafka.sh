#!/usr/bin/env bash
# A single-node KRaft Apache Kafka broker for development, tests and the demo.
#
#   deploy/local/kafka.sh start    start (idempotent), wait until it answers, create the v1 topics
#   deploy/local/kafka.sh stop     stop it; nothing is left running
#   deploy/local/kafka.sh status   say whether it runs, and list its topics
#   deploy/local/kafka.sh reset    stop and delete its data
#
# Environment: VIGIL_KAFKA_PORT (default 9092; the controller listens on the port + 1),
# VIGIL_KAFKA_DATA (default deploy/local/.data/kafka-<port>), VIGIL_KAFKA_HEAP (default 1g).
# Several brokers on different ports can run side by side (the tests use 19092).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"

port="${VIGIL_KAFKA_PORT:-9092}"
controller_port=$((port + 1))
data="${VIGIL_KAFKA_DATA:-$here/.data/kafka-$port}"
heap="${VIGIL_KAFKA_HEAP:-1g}"
pidfile="$data/broker.pid"
logfile="$data/broker.log"
bootstrap="localhost:$port"

# name:partitions:cleanup.policy
topics=(
  "vigil.telemetry.v1:12:delete"
  "vigil.alerts.v1:12:delete"
  "vigil.aggregates.v1:12:delete"
  "vigil.dlq.v1:3:delete"
  "vigil.state.v1:12:compact"
  "vigil.patient-config.v1:12:compact"
)

java_cp() { echo "$KAFKA_LIBS/*"; }
kafka_java() {
  java -Xms64m -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$data/tools-log4j.properties" \
    -cp "$(java_cp)" "$@"
}

running() {
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
  # The broker logs this line once it has joined the KRaft quorum and opened its listener.
  grep -q "Kafka Server started" "$logfile" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

write_config() {
  mkdir -p "$data/log"
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:$controller_port
listeners=PLAINTEXT://localhost:$port,CONTROLLER://localhost:$controller_port
advertised.listeners=PLAINTEXT://localhost:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/log
num.partitions=12
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=12
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
log.segment.bytes=268435456
PROPS
  cat >"$data/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$logfile
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
log4j.logger.state.change.logger=WARN
PROPS
  cat >"$data/tools-log4j.properties" <<PROPS
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
PROPS
}

create_topics() {
  local pids=() spec name parts policy
  for spec in "${topics[@]}"; do
    IFS=: read -r name parts policy <<<"$spec"
    local extra=()
    if [[ $policy == compact ]]; then
      extra=(--config cleanup.policy=compact --config min.cleanable.dirty.ratio=0.1 --config segment.ms=600000)
    fi
    kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create --if-not-exists \
      --topic "$name" --partitions "$parts" --replication-factor 1 "${extra[@]}" >/dev/null &
    pids+=($!)
  done
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  ((failed == 0)) || die "creating the v1 topics failed (see output above)"
}

start() {
  command -v java >/dev/null || die "java not found: run deploy/local/setup.sh"
  [[ -f "$KAFKA_LIBS/.complete" ]] || "$here/setup.sh" --kafka-only
  if running; then
    log "broker already running on $bootstrap (pid $(cat "$pidfile"))"
  else
    local t0=$SECONDS
    local p
    for p in "$port" "$controller_port"; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        die "port $p is already in use (another broker with another data folder? 'ss -ltnp | grep :$p' shows who)"
      fi
    done
    write_config
    if [[ ! -f "$data/log/meta.properties" ]]; then
      local cluster_id
      cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid)"
      kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$data/server.properties" >/dev/null
    fi
    : >"$logfile"
    # setsid: the broker must not die with the shell that started it (nor get its Ctrl-C).
    KAFKA_HEAP_OPTS="" setsid java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -Djava.awt.headless=true -Dlog4j.configuration="file:$data/log4j.properties" \
      -cp "$(java_cp)" kafka.Kafka "$data/server.properties" >"$data/broker.out" 2>&1 </dev/null &
    echo $! >"$pidfile"
    log "broker starting on $bootstrap (pid $!, data ${data#$VIGIL_ROOT/})"
    local deadline=$((SECONDS + 120))
    until answers; do
      running || { tail -n 20 "$logfile" "$data/broker.out" >&2; die "broker exited during start-up"; }
      ((SECONDS < deadline)) || die "broker did not answer within 120 s (log: $logfile)"
      sleep 0.2
    done
    log "broker answers after $((SECONDS - t0)) s"
  fi
  create_topics
  log "v1 topics present on $bootstrap"
}

stop() {
  if ! running; then
    rm -f "$pidfile"
    log "broker on $bootstrap is not running"
    return
  fi
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker did not stop within 30 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "broker on $bootstrap stopped"
}

status() {
  if running && answers; then
    echo "running on $bootstrap (pid $(cat "$pidfile"), data $data)"
    kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --list
  else
    echo "not running ($bootstrap)"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) stop; rm -rf "$data"; log "deleted $data" ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
