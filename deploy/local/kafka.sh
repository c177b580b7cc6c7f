#!/usr/bin/env bash
# A single-node KRaft Apache Kafka broker for development, tests and the demo.
#
#   deploy/local/kafka.sh start    start (idempotent), wait until it answers, create the v1 topics
#   deploy/local/kafka.sh stop     stop it; nothing is left running
#   deploy/local/kafka.sh status   say whether it runs, and list its topics
#   deploy/local/kafka.sh reset    stop and delete its data
#   deploy/local/kafka.sh start --secure
#                                  as start, plus a SASL_SSL listener on the port + 2 (TLS with a
#                                  throwaway CA, SCRAM-SHA-512 users, ACLs); see secure_setup below
#   deploy/local/kafka.sh client-env <user>
#                                  print the VIGIL_KAFKA_* variables for `vigil run` as <user>
#                                  over SASL_SSL (secure brokers only)
#
# Environment: VIGIL_KAFKA_PORT (default 9092; the controller listens on the port + 1),
# VIGIL_KAFKA_DATA (default deploy/local/.data/kafka-<port>), VIGIL_KAFKA_HEAP (default 1g).
# Several brokers on different ports can run side by side (the tests use 19092).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"

port="${VIGIL_KAFKA_PORT:-9092}"
controller_port=$((port + 1))
secure_port=$((port + 2))
data="${VIGIL_KAFKA_DATA:-$here/.data/kafka-$port}"
heap="${VIGIL_KAFKA_HEAP:-1g}"
pidfile="$data/broker.pid"
logfile="$data/broker.log"
bootstrap="localhost:$port"
secure=0
[[ "${2:-}" == "--secure" ]] && secure=1
# A broker formatted with --secure stays secure (its SCRAM users live in its metadata).
[[ -f "$data/secure" ]] && secure=1

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
  local listeners="PLAINTEXT://localhost:$port,CONTROLLER://localhost:$controller_port"
  local advertised="PLAINTEXT://localhost:$port"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if ((secure)); then
    listeners+=",SASL_SSL://localhost:$secure_port"
    advertised+=",SASL_SSL://localhost:$secure_port"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:$controller_port
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
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
  ((secure)) && write_secure_config
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

# --- --secure: TLS, SCRAM-SHA-512 and ACLs ----------------------------------------------------
# Clients use the SASL_SSL listener (port + 2): TLS with a certificate for localhost signed by a
# throwaway CA ($data/tls/ca.crt), SCRAM-SHA-512 users created at format time with passwords in
# $data/secrets/<user>.password (mode 600), and the StandardAuthorizer (deny unless an ACL allows):
# least privilege per principal (the v1 topic names; a deployment with other names grants the same
# operations on its own):
#   vigil    exactly what `vigil run` needs: reads telemetry and patient config; writes alerts,
#            aggregates and dead letters; reads and writes its state; groups and transactional
#            ids vigil*. It cannot write telemetry or read its own outputs.
#   reader   dashboards: reads alerts and aggregates only (groups reader*). Never telemetry, state
#            or dead letters, which hold raw patient signals, and never writes.
#   gateway  device gateways: writes telemetry only.
# The PLAINTEXT listener stays for the scripts' own admin tools and is a super user; it is bound
# to localhost. Production brokers have no such listener.
scram_users=(vigil reader gateway)

secure_material() {
  local tls="$data/tls" secrets="$data/secrets"
  mkdir -p "$tls" "$secrets"
  chmod 700 "$secrets"
  if [[ ! -f "$tls/broker.p12" ]]; then
    command -v openssl >/dev/null || die "openssl not found: run deploy/local/setup.sh"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=vigil-local-ca" \
      -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
      -days 30 -extfile "$tls/san.ext" -out "$tls/broker.crt" 2>/dev/null
    openssl rand -hex 16 >"$secrets/keystore.password"
    openssl pkcs12 -export -in "$tls/broker.crt" -inkey "$tls/broker.key" -certfile "$tls/ca.crt" \
      -name broker -passout "file:$secrets/keystore.password" -out "$tls/broker.p12"
  fi
  local user
  for user in "${scram_users[@]}"; do
    [[ -f "$secrets/$user.password" ]] || (umask 077; openssl rand -hex 16 >"$secrets/$user.password")
  done
}

write_secure_config() {
  cat >>"$data/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$data/tls/broker.p12
ssl.keystore.password=$(cat "$data/secrets/keystore.password")
ssl.client.auth=none
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS
PROPS
  chmod 600 "$data/server.properties"
}

# --add-scram arguments for `kafka-storage format`: the users exist before the broker starts.
scram_format_args() {
  local user
  for user in "${scram_users[@]}"; do
    printf -- '--add-scram\0SCRAM-SHA-512=[name=%s,password=%s]\0' "$user" "$(cat "$data/secrets/$user.password")"
  done
}

acl() { kafka_java kafka.admin.AclCommand --bootstrap-server "$bootstrap" --add --force "$@" >/dev/null; }

create_acls() {
  local pids=()
  acl --allow-principal User:vigil --operation Read --operation Describe \
    --topic vigil.telemetry.v1 --topic vigil.patient-config.v1 --topic vigil.state.v1 &
  pids+=($!)
  acl --allow-principal User:vigil --operation Write --operation Describe \
    --topic vigil.alerts.v1 --topic vigil.aggregates.v1 --topic vigil.dlq.v1 --topic vigil.state.v1 &
  pids+=($!)
  acl --allow-principal User:vigil --operation Read --operation Describe --resource-pattern-type prefixed \
    --group vigil &
  pids+=($!)
  acl --allow-principal User:vigil --operation Write --operation Describe --resource-pattern-type prefixed \
    --transactional-id vigil &
  pids+=($!)
  acl --allow-principal User:vigil --allow-principal User:gateway --operation IdempotentWrite --cluster &
  pids+=($!)
  acl --allow-principal User:reader --operation Read --operation Describe \
    --topic vigil.alerts.v1 --topic vigil.aggregates.v1 &
  pids+=($!)
  acl --allow-principal User:reader --operation Read --resource-pattern-type prefixed --group reader &
  pids+=($!)
  acl --allow-principal User:gateway --operation Write --operation Describe --topic vigil.telemetry.v1 &
  pids+=($!)
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  ((failed == 0)) || die "creating the ACLs failed (see output above)"
}

client_env() {
  local user="${1:-}"
  [[ -f "$data/secure" ]] || die "the broker in $data was not started with --secure"
  [[ -f "$data/secrets/$user.password" ]] || die "no SCRAM user '$user' (users: ${scram_users[*]})"
  cat <<ENV
VIGIL_KAFKA_BOOTSTRAP_SERVERS=localhost:$secure_port
VIGIL_KAFKA_PROPERTIES__SECURITY__PROTOCOL=SASL_SSL
VIGIL_KAFKA_PROPERTIES__SASL__MECHANISMS=SCRAM-SHA-512
VIGIL_KAFKA_PROPERTIES__SASL__USERNAME=$user
VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE=$data/secrets/$user.password
VIGIL_KAFKA_PROPERTIES__SSL__CA__LOCATION=$data/tls/ca.crt
ENV
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
    ((secure)) && secure_material
    write_config
    if [[ ! -f "$data/log/meta.properties" ]]; then
      local cluster_id scram=()
      cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid)"
      if ((secure)); then
        mapfile -d '' scram < <(scram_format_args)
        touch "$data/secure"
      fi
      kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$data/server.properties" \
        "${scram[@]}" >/dev/null
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
  if ((secure)); then
    create_acls
    log "SASL_SSL on localhost:$secure_port (users: ${scram_users[*]}; CA: ${data#$VIGIL_ROOT/}/tls/ca.crt)"
  fi
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
  client-env) client_env "${2:-}" ;;
  *) echo "usage: $0 start [--secure]|stop|status|reset|client-env <user>" >&2; exit 2 ;;
esac
