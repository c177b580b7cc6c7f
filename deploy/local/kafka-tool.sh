#!/usr/bin/env bash
# The Apache Kafka command-line tools from the pinned jars in .cache/ (no Kafka distribution
# needed), for the runbook's procedures (deploy/README.md):
#
#   deploy/local/kafka-tool.sh consumer-groups --bootstrap-server HOST:PORT --describe --group vigil
#   deploy/local/kafka-tool.sh topics          --bootstrap-server HOST:PORT --describe --topic vigil.state.v1
#   deploy/local/kafka-tool.sh acls            --bootstrap-server HOST:PORT --list
#   deploy/local/kafka-tool.sh configs         --bootstrap-server HOST:PORT --describe --entity-type topics --entity-name vigil.state.v1
#   deploy/local/kafka-tool.sh get-offsets     --bootstrap-server HOST:PORT --topic vigil.telemetry.v1 --time -1
#   deploy/local/kafka-tool.sh console-consumer --bootstrap-server HOST:PORT --topic vigil.dlq.v1 ...
#
# Against a secured cluster add `--command-config client.properties` (consumer-groups, topics,
# acls, configs, get-offsets) or `--consumer.config client.properties` (console-consumer) with
#   security.protocol=SASL_SSL
#   sasl.mechanism=SCRAM-SHA-512
#   sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="..." password="...";
#   ssl.truststore.type=PEM
#   ssl.truststore.location=/path/to/ca.crt
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/common.sh"
[[ -f "$KAFKA_LIBS/.complete" ]] || "$here/setup.sh" --kafka-only
tool="${1:-}"
shift || true
case "$tool" in
  consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  topics) class=org.apache.kafka.tools.TopicCommand ;;
  acls) class=kafka.admin.AclCommand ;;
  configs) class=kafka.admin.ConfigCommand ;;
  get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
  console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  *) echo "usage: $0 consumer-groups|topics|acls|configs|get-offsets|console-consumer <tool arguments>" >&2; exit 2 ;;
esac
log4j="$(mktemp)"
trap 'rm -f "$log4j"' EXIT
printf 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=%%p %%m%%n\n' >"$log4j"
java -Xms64m -Xmx512m -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$log4j" -cp "$KAFKA_LIBS/*" "$class" "$@"
