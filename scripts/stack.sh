#!/usr/bin/env bash
# Cordon local stack: Kafka (KRaft, single node), Elasticsearch, Redis, nftables.
#
#   npm run stack -- up      [kafka|elasticsearch|redis|nftables ...]   (default: all)
#   npm run stack -- down    [kafka|elasticsearch|redis|nftables ...]   (default: all)
#   npm run stack -- restart  kafka|elasticsearch|redis ...
#   npm run stack -- status  [component ...]
#
# Everything listens on 127.0.0.1 only. Downloads are cached in the stack dir
# (and ~/.m2), so a second `up` downloads nothing and, when everything already
# runs, returns in a second or two. `down` stops only what `up` started, by
# pid file, never by process name. See docs in DESIGN.md section 4.
#
# Environment:
#   CORDON_STACK_DIR  stack dir (default /var/cache/cordon as root,
#                     else ${XDG_CACHE_HOME:-$HOME/.cache}/cordon)
#   KAFKA_PORT (9092) KAFKA_CONTROLLER_PORT (9093) KAFKA_HEAP (1g)
#   KAFKA_SASL_SSL_PORT (9094: SCRAM-SHA-256/512 over TLS) KAFKA_MTLS_PORT (9095: TLS, client cert required)
#   ES_PORT (9200)    ES_TRANSPORT_PORT (9300)     ES_HEAP (512m)
#   ES_JAVA_EXTRA_OPTS (extra JVM flags for Elasticsearch)
#   CORDON_KAFKA_VERSION (4.4.0; 3.9.x also works)
#   CORDON_ES_VERSION (9.2.0; 8.x also works)  ES_JAVA_HOME (a JDK for Elasticsearch: 21+ for 9.x;
#                     default: the first of java on PATH and /usr/lib/jvm/* that is new enough)
#   REDIS_PORT (6379)
#   MAVEN_REPO        local Maven repository (default ~/.m2/repository)
set -euo pipefail

readonly KAFKA_VERSION=${CORDON_KAFKA_VERSION:-4.4.0}
readonly KAFKA_MAJOR=${KAFKA_VERSION%%.*}
readonly SCALA_BINARY=2.13
readonly RELOAD4J_VERSION=1.2.25
readonly SLF4J_VERSION=1.7.36
# Kafka 4 logs through log4j2 and declares log4j-core, but no binding for its slf4j 1.7 API
readonly LOG4J2_VERSION=2.25.5
readonly ES_VERSION=${CORDON_ES_VERSION:-9.2.0}
readonly ES_MAJOR=${ES_VERSION%%.*}
readonly HOST=127.0.0.1

KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_HEAP=${KAFKA_HEAP:-1g}
KAFKA_SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT:-9094}
KAFKA_MTLS_PORT=${KAFKA_MTLS_PORT:-9095}
ES_PORT=${ES_PORT:-9200}
ES_TRANSPORT_PORT=${ES_TRANSPORT_PORT:-9300}
ES_HEAP=${ES_HEAP:-512m}
REDIS_PORT=${REDIS_PORT:-6379}
MAVEN_REPO=${MAVEN_REPO:-$HOME/.m2/repository}

readonly KAFKA_WAIT_SECS=90
readonly ES_WAIT_SECS=120
readonly REDIS_WAIT_SECS=20
readonly STOP_WAIT_SECS=30
readonly ES_USER=cordon-es
readonly ALL_COMPONENTS=(redis nftables kafka elasticsearch)

IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

if [[ -n ${CORDON_STACK_DIR:-} ]]; then
  STACK_DIR=$CORDON_STACK_DIR
elif ((IS_ROOT)); then
  STACK_DIR=/var/cache/cordon
else
  STACK_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/cordon
fi

KAFKA_DIR=$STACK_DIR/kafka
KAFKA_LIBS=$KAFKA_DIR/libs
KAFKA_PID=$KAFKA_DIR/kafka.pid
KAFKA_OUT=$KAFKA_DIR/logs/kafka.out
# throwaway CA, broker and client certificates, SCRAM passwords: made on first up, never in the repo
KAFKA_SECURITY=$KAFKA_DIR/security
# principals of the secure listeners: `cordon` may use every cordon* topic and group, `stranger` nothing
readonly KAFKA_USERS=(cordon stranger)
readonly KAFKA_ACL_PREFIX=cordon
readonly SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ES_DIR=$STACK_DIR/elasticsearch
ES_HOME=$ES_DIR/elasticsearch-$ES_VERSION
ES_PID=$ES_DIR/run/elasticsearch.pid
# one data dir per major: 9.x upgrades an 8.x data dir in place, and 8.x cannot read it back
ES_DATA=$ES_DIR/data-$ES_MAJOR
ES_ZIP=$MAVEN_REPO/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$ES_VERSION/elasticsearch-$ES_VERSION.zip
REDIS_DIR=$STACK_DIR/redis
REDIS_PID=$REDIS_DIR/redis.pid

# ---------------------------------------------------------------- helpers

log() { printf '[stack] %s\n' "$*" >&2; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[stack] ERROR: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat >&2 <<EOF
usage: bash scripts/stack.sh up|down|restart|status [kafka|elasticsearch|redis|nftables ...]
  stack dir: $STACK_DIR
EOF
  exit 2
}

# port_open PORT -> 0 when something accepts TCP connections on 127.0.0.1:PORT
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

port_state() { if port_open "$1"; then printf open; else printf closed; fi; }

# read_pid FILE -> prints the pid stored in FILE (empty when absent/garbage)
read_pid() {
  local pid=""
  [[ -r $1 ]] && read -r pid <"$1" 2>/dev/null || true
  [[ $pid =~ ^[0-9]+$ ]] && printf '%s' "$pid"
  return 0
}

# pid_alive PID PATTERN -> 0 when PID runs and its command line matches PATTERN
# (guards against a stale pid file whose pid got reused by something else)
pid_alive() {
  local pid=$1 pattern=$2 cmd
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$pattern"* ]]
}

# managed_pid FILE PATTERN -> prints pid when the pid file points at a live process
managed_pid() {
  local pid
  pid=$(read_pid "$1")
  if pid_alive "$pid" "$2"; then printf '%s' "$pid"; fi
  return 0
}

# stop_pid NAME PIDFILE PATTERN: SIGTERM, wait, SIGKILL; then remove the pid file
stop_pid() {
  local name=$1 file=$2 pattern=$3 pid i
  pid=$(managed_pid "$file" "$pattern")
  if [[ -z $pid ]]; then
    if [[ -e $file ]]; then
      log "$name: stale pid file, removing $file"
      rm -f "$file"
    else
      log "$name: not started by this script (no pid file), nothing to stop"
    fi
    return 0
  fi
  log "$name: stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_WAIT_SECS * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name: pid $pid still alive after ${STOP_WAIT_SECS}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  kill -0 "$pid" 2>/dev/null && die "$name: could not stop pid $pid"
  rm -f "$file"
  log "$name: stopped"
}

APT_UPDATED=0
apt_install() {
  ((IS_ROOT)) || die "need root to install Debian packages: $*"
  command -v apt-get >/dev/null || die "apt-get not found; install manually: $*"
  if ((!APT_UPDATED)); then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$STACK_DIR/apt.log" 2>&1 || {
      tail_log "$STACK_DIR/apt.log"
      die "apt-get update failed"
    }
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$STACK_DIR/apt.log" 2>&1 || {
    tail_log "$STACK_DIR/apt.log"
    die "apt-get install $* failed"
  }
}

need_java() {
  command -v java >/dev/null || die "java not found on PATH (Java 17+ required)"
  local v
  v=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 17)) || die "Java 17+ required, found '${v:-unknown}'"
}

need_mvn() {
  command -v mvn >/dev/null || die "mvn not found on PATH (needed once to fetch Kafka/Elasticsearch from Maven Central)"
}

tail_log() {
  local f=$1 errs
  [[ -f $f ]] || return 0
  errs=$(grep -m 8 -E '(ERROR|FATAL|Exception:|Caused by:)' "$f" 2>/dev/null | cut -c1-300) || true
  if [[ -n $errs ]]; then
    printf '[stack] ---- first errors in %s ----\n%s\n' "$f" "$errs" >&2
  fi
  printf '[stack] ---- last lines of %s ----\n' "$f" >&2
  tail -n "${2:-40}" "$f" >&2 || true
  printf '[stack] ---- end of %s ----\n' "$f" >&2
}

ensure_stack_dir() {
  mkdir -p "$STACK_DIR"
  # as root the dir lives in /var/cache; keep it traversable for unprivileged users
  ((IS_ROOT)) && chmod 0755 "$STACK_DIR"
  return 0
}

# ---------------------------------------------------------------- kafka

kafka_logging_deps() { # the logging backend a Kafka broker of this major needs on its classpath
  if ((KAFKA_MAJOR >= 4)); then
    cat <<EOF
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J2_VERSION</version>
    </dependency>
EOF
  else
    cat <<EOF
    <!-- kafka core 3.9 does not declare a logging backend; without these the broker dies at start -->
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>$RELOAD4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
EOF
  fi
}

kafka_write_pom() {
  mkdir -p "$KAFKA_DIR"
  cat >"$KAFKA_DIR/pom.xml.tmp" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by scripts/stack.sh: runtime classpath of a Kafka $KAFKA_VERSION broker -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cordon</groupId>
  <artifactId>cordon-kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_BINARY</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
$(kafka_logging_deps)
  </dependencies>
</project>
EOF
  if cmp -s "$KAFKA_DIR/pom.xml.tmp" "$KAFKA_DIR/pom.xml"; then
    rm -f "$KAFKA_DIR/pom.xml.tmp"
  else
    mv "$KAFKA_DIR/pom.xml.tmp" "$KAFKA_DIR/pom.xml"
  fi
}

kafka_fetch() {
  kafka_write_pom
  local marker=$KAFKA_LIBS/.complete want
  want=$(sha256sum "$KAFKA_DIR/pom.xml" | cut -d' ' -f1)
  if [[ -f $marker && $(<"$marker") == "$want" ]] && compgen -G "$KAFKA_LIBS/kafka_$SCALA_BINARY-$KAFKA_VERSION.jar" >/dev/null; then
    log "kafka: libs cached in $KAFKA_LIBS"
    return 0
  fi
  need_mvn
  log "kafka: resolving kafka_$SCALA_BINARY:$KAFKA_VERSION and its logging backend into $KAFKA_LIBS (Maven, first run only)"
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_DIR/pom.xml" -Dmaven.repo.local="$MAVEN_REPO" \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime >"$KAFKA_DIR/mvn.log" 2>&1; then
    tail_log "$KAFKA_DIR/mvn.log"
    rm -rf "$KAFKA_LIBS"
    die "kafka: mvn dependency:copy-dependencies failed (is Maven Central reachable?)"
  fi
  [[ -f $KAFKA_LIBS/kafka_$SCALA_BINARY-$KAFKA_VERSION.jar ]] || die "kafka: kafka jar missing after copy-dependencies"
  compgen -G "$KAFKA_LIBS/$( ((KAFKA_MAJOR >= 4)) && echo log4j-slf4j-impl || echo reload4j)-*.jar" >/dev/null ||
    die "kafka: logging backend missing after copy-dependencies"
  printf '%s\n' "$want" >"$marker"
  log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
}

# kafka_render_config: the broker's server.properties on stdout. PLAINTEXT (9092) is open to
# anyone on loopback and its principal, ANONYMOUS, is a super user: the rest of the suite uses it.
# SASL_SSL and SSL (client certificate required) show what a deployment's listeners look like:
# every principal there is authorized by ACL (StandardAuthorizer), nothing is allowed by default.
kafka_render_config() {
  local sec=$KAFKA_SECURITY
  cat <<EOF
# generated by scripts/stack.sh -- Kafka $KAFKA_VERSION, single-node KRaft (combined broker + controller), loopback only
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,SSL://$HOST:$KAFKA_MTLS_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,SSL://$HOST:$KAFKA_MTLS_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=6
default.replication.factor=1
auto.create.topics.enable=false
# single node: internal topics must have replication factor 1 or group coordination never comes up
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
# TLS on SASL_SSL and SSL: PEM key + chain, PEM CA (KIP-651); certificates sha256 $(kafka_security_digest)
ssl.keystore.type=PEM
ssl.keystore.location=$sec/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$sec/ca.crt
listener.name.ssl.ssl.client.auth=required
# a client certificate's principal is its CN (CN=cordon -> User:cordon, as its SCRAM user)
ssl.principal.mapping.rules=RULE:^CN=([^,]+).*\$/\$1/,DEFAULT
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
EOF
}

kafka_configure() {
  mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  kafka_render_config >"$KAFKA_DIR/server.properties"
  cat >"$KAFKA_DIR/log4j.properties" <<'EOF'
# generated by scripts/stack.sh
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel$=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.log=WARN
EOF
  cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
# generated by scripts/stack.sh (Kafka 4.x logs through log4j2)
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
logger.requests.name=kafka.request.logger
logger.requests.level=WARN
logger.state.name=state.change.logger
logger.state.level=WARN
logger.authz.name=kafka.authorizer.logger
logger.authz.level=WARN
logger.log.name=kafka.log
logger.log.level=WARN
logger.storage.name=org.apache.kafka.storage.internals.log
logger.storage.level=WARN
EOF
  if [[ ! -f $KAFKA_DIR/cluster.id ]]; then
    java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 >"$KAFKA_DIR/cluster.id.tmp" ||
      die "kafka: StorageTool random-uuid failed"
    [[ -s $KAFKA_DIR/cluster.id.tmp ]] || die "kafka: empty cluster id"
    mv "$KAFKA_DIR/cluster.id.tmp" "$KAFKA_DIR/cluster.id"
  fi
  if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
    local id
    id=$(<"$KAFKA_DIR/cluster.id")
    log "kafka: formatting storage (cluster id $id)"
    java "$(kafka_log_opt)" -cp "$KAFKA_LIBS/*" \
      kafka.tools.StorageTool format -t "$id" -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/logs/format.out" 2>&1 || {
      tail_log "$KAFKA_DIR/logs/format.out"
      die "kafka: storage format failed"
    }
  fi
}

# kafka_security_material: a throwaway CA, the broker's certificate (SAN 127.0.0.1 and localhost),
# and per user a client certificate (CN=<user>) and a SCRAM password, into $KAFKA_SECURITY.
# Made once; kept across restarts (delete the directory to make new ones).
kafka_security_material() {
  [[ -f $KAFKA_SECURITY/.complete ]] && return 0
  command -v openssl >/dev/null || die "kafka: openssl not found (needed once to make the stack's TLS certificates)"
  local tmp=$KAFKA_SECURITY.tmp out=$KAFKA_DIR/logs/security.out
  mkdir -p "$KAFKA_DIR/logs"
  log "kafka: making a throwaway CA, broker and client certificates and SCRAM passwords in $KAFKA_SECURITY"
  rm -rf "$tmp"
  mkdir -m 0700 -p "$tmp"
  if ! (cd "$tmp" && kafka_make_security) >"$out" 2>&1; then
    tail_log "$out"
    rm -rf "$tmp"
    die "kafka: making the TLS certificates failed (log: $out)"
  fi
  rm -rf "$KAFKA_SECURITY"
  mv "$tmp" "$KAFKA_SECURITY"
}

# kafka_make_security: in the new security dir. It runs as an if condition, where set -e does
# not apply, hence the explicit returns.
kafka_make_security() {
  umask 077
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
    -days 3650 -subj "/CN=cordon-stack-ca" || return 1
  kafka_sign broker "/CN=localhost" "subjectAltName=IP:$HOST,DNS:localhost" "extendedKeyUsage=serverAuth" || return 1
  cat broker.key broker.crt ca.crt >broker.pem || return 1
  local user
  for user in "${KAFKA_USERS[@]}"; do
    kafka_sign "$user" "/CN=$user" "extendedKeyUsage=clientAuth" || return 1
    openssl rand -hex 24 >"$user.password" || return 1
  done
  rm -f ./*.csr ca.srl
  chmod 0644 ./*.crt && : >.complete
}

kafka_sign() { # kafka_sign NAME SUBJECT EXTENSION... -> NAME.key, NAME.crt signed by ca.key
  local name=$1 subject=$2
  shift 2
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject" &&
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out "$name.crt" \
      -extfile <(printf '%s\n' basicConstraints=CA:FALSE keyUsage=digitalSignature "$@")
}

# kafka_security_digest: names the certificates the broker serves, so new ones change server.properties
kafka_security_digest() {
  if [[ -f $KAFKA_SECURITY/.complete ]]; then
    cat "$KAFKA_SECURITY/ca.crt" "$KAFKA_SECURITY/broker.pem" | sha256sum | cut -c1-16
  else
    printf none
  fi
}

# kafka_config_current: 0 when the running broker's server.properties is what this script renders now
kafka_config_current() { cmp -s <(kafka_render_config) "$KAFKA_DIR/server.properties"; }

kafka_grants() { # grant lines for scripts/kafka-access.java: both SCRAM mechanisms per user, cordon's ACLs
  local user mechanism
  for user in "${KAFKA_USERS[@]}"; do
    for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
      printf 'user %s %s %s\n' "$mechanism" "$user" "$(<"$KAFKA_SECURITY/$user.password")"
    done
  done
  printf 'allow %s %s User:cordon\n' TOPIC "$KAFKA_ACL_PREFIX" GROUP "$KAFKA_ACL_PREFIX"
}

# kafka_grant_access: SCRAM users and ACLs through the Admin API (KRaft keeps them in the metadata log,
# so they survive restarts); done again only when the storage or the grants changed.
kafka_grant_access() {
  local marker=$KAFKA_DIR/access.applied want out=$KAFKA_DIR/logs/access.out
  if [[ -z $(kafka_pid) ]]; then
    warn "kafka: broker not started by this script; not granting the secure listeners' users and ACLs"
    return 0
  fi
  port_open "$KAFKA_SASL_SSL_PORT" && port_open "$KAFKA_MTLS_PORT" ||
    die "kafka: secure listeners $HOST:$KAFKA_SASL_SSL_PORT / $HOST:$KAFKA_MTLS_PORT not answering (log: $KAFKA_OUT)"
  want=$({ cat "$KAFKA_DIR/data/meta.properties" && kafka_grants; } | sha256sum | cut -d' ' -f1)
  if [[ -f $marker && $(<"$marker") == "$want" ]]; then
    log "kafka: SCRAM users (${KAFKA_USERS[*]}) and ACLs already granted"
    return 0
  fi
  java --list-modules 2>/dev/null | grep -q '^jdk.compiler@' ||
    die "kafka: a JDK (with jdk.compiler) is needed to run scripts/kafka-access.java"
  log "kafka: granting SCRAM-SHA-256/512 users ${KAFKA_USERS[*]} and User:cordon's ACLs on $KAFKA_ACL_PREFIX* topics and groups"
  if ! kafka_grants | java "$(kafka_log_opt)" -cp "$KAFKA_LIBS/*" \
    "$SCRIPT_DIR/kafka-access.java" "$HOST:$KAFKA_PORT" >"$out" 2>&1; then
    tail_log "$out"
    die "kafka: granting users and ACLs failed (log: $out)"
  fi
  printf '%s\n' "$want" >"$marker"
}

kafka_log_opt() { # the JVM flag naming the logging config of this major
  if ((KAFKA_MAJOR >= 4)); then printf '%s' "-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.properties"; else printf '%s' "-Dlog4j.configuration=file:$KAFKA_DIR/log4j.properties"; fi
}

kafka_pid() { managed_pid "$KAFKA_PID" "kafka.Kafka"; }

# kafka_coordinator_error: sends a raw FindCoordinator v0 request for a probe group
# and prints its error code (0 = the group coordinator is up). The first such request
# also makes the broker create __consumer_offsets, so clients never see the
# "group coordinator is not available" phase after `up`.
kafka_coordinator_error() {
  local client=cordon-stack key=cordon-stack-probe hex len
  local -a bytes
  len=$((2 + 2 + 4 + 2 + ${#client} + 2 + ${#key}))
  hex=$(
    {
      # size, api_key=10 (FindCoordinator), api_version=0, correlation_id=1, client_id, key
      printf "\\x00\\x00\\x00\\x$(printf %02x "$len")\\x00\\x0a\\x00\\x00\\x00\\x00\\x00\\x01"
      printf "\\x00\\x$(printf %02x ${#client})%s\\x00\\x$(printf %02x ${#key})%s" "$client" "$key"
    } 2>/dev/null | {
      exec 3<>"/dev/tcp/$HOST/$KAFKA_PORT" || exit 1
      cat >&3
      timeout 3 head -c 10 <&3 | od -An -tx1
    } 2>/dev/null
  ) || return 1
  read -r -a bytes <<<"$hex"
  ((${#bytes[@]} == 10)) || return 1
  printf '%d' "$((16#${bytes[8]}${bytes[9]}))"
}

# sets KAFKA_STARTED=1 when a process was launched and must be waited for
KAFKA_STARTED=0
kafka_launch() {
  local pid
  kafka_security_material
  pid=$(kafka_pid)
  if [[ -n $pid ]] && ! kafka_config_current; then
    log "kafka: server.properties changed (listeners, TLS material or settings); restarting pid $pid to apply it, data kept"
    kafka_down
    pid=""
  fi
  if [[ -n $pid ]] && port_open "$KAFKA_PORT"; then
    if [[ $(kafka_coordinator_error || true) == 0 ]]; then
      log "kafka: already running (pid $pid, $HOST:$KAFKA_PORT)"
    else
      log "kafka: pid $pid running but not ready yet; waiting for it"
      KAFKA_STARTED=1
    fi
    return 0
  fi
  if [[ -n $pid ]]; then
    log "kafka: pid $pid alive but port $KAFKA_PORT not answering yet; waiting for it"
    KAFKA_STARTED=1
    return 0
  fi
  if port_open "$KAFKA_PORT"; then
    warn "kafka: $HOST:$KAFKA_PORT is already served by a process this script did not start; using it as is (down will not stop it)"
    return 0
  fi
  rm -f "$KAFKA_PID"
  need_java
  kafka_fetch
  kafka_configure
  [[ -f $KAFKA_OUT ]] && mv -f "$KAFKA_OUT" "$KAFKA_OUT.prev"
  log "kafka: starting $KAFKA_VERSION KRaft broker+controller on $HOST:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT, SASL_SSL $KAFKA_SASL_SSL_PORT, SSL mTLS $KAFKA_MTLS_PORT)"
  # The inner bash writes its own pid and then execs java, so the pid file names the JVM.
  (
    cd "$KAFKA_DIR"
    exec setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
      java -Xms512m "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      "$(kafka_log_opt)" "-Dkafka.logs.dir=$KAFKA_DIR/logs" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
      >"$KAFKA_OUT" 2>&1 </dev/null 9>&-
  ) &
  disown $! 2>/dev/null || true
  KAFKA_STARTED=1
}

kafka_wait() {
  ((KAFKA_STARTED)) || return 0
  local deadline=$((SECONDS + KAFKA_WAIT_SECS)) pid="" port_ok=0 started=0 err
  log "kafka: waiting for $HOST:$KAFKA_PORT and broker readiness (up to ${KAFKA_WAIT_SECS}s)"
  while ((SECONDS < deadline)); do
    [[ -z $pid ]] && pid=$(read_pid "$KAFKA_PID")
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      tail_log "$KAFKA_OUT" 60
      rm -f "$KAFKA_PID"
      die "kafka: broker process $pid exited during startup (log: $KAFKA_OUT)"
    fi
    if ((!port_ok)) && port_open "$KAFKA_PORT"; then
      port_ok=1
      log "kafka: port $KAFKA_PORT answers"
    fi
    # "Kafka Server started" is logged once the broker is registered and unfenced;
    # then wait for the group coordinator (consumer groups) to answer
    if ((port_ok)) && { ((started)) || grep -q 'Kafka Server started' "$KAFKA_OUT" 2>/dev/null; }; then
      if ((!started)); then
        started=1
        log "kafka: broker started; waiting for the group coordinator"
      fi
      err=$(kafka_coordinator_error) || err=x
      if [[ $err == 0 ]]; then
        log "kafka: ready, group coordinator up (pid $pid)"
        return 0
      fi
    fi
    sleep 0.5
  done
  tail_log "$KAFKA_OUT" 60
  die "kafka: not ready after ${KAFKA_WAIT_SECS}s (log: $KAFKA_OUT)"
}

kafka_down() { stop_pid kafka "$KAFKA_PID" "kafka.Kafka"; }

kafka_status() {
  local pid state
  pid=$(kafka_pid)
  if [[ -n $pid ]] && port_open "$KAFKA_PORT"; then
    state=running
  elif [[ -n $pid ]]; then
    state=starting
  elif port_open "$KAFKA_PORT"; then
    state="running(external)"
  else
    state=stopped
  fi
  printf '%-14s %-18s pid=%-8s port=%s:%s sasl_ssl=%s:%s(%s) ssl_mtls=%s:%s(%s)\n' kafka "$state" "${pid:--}" "$HOST" "$KAFKA_PORT" \
    "$HOST" "$KAFKA_SASL_SSL_PORT" "$(port_state "$KAFKA_SASL_SSL_PORT")" "$HOST" "$KAFKA_MTLS_PORT" "$(port_state "$KAFKA_MTLS_PORT")"
}

# ---------------------------------------------------------------- elasticsearch

es_run() { # run a command as the ES user (ES refuses to run as root)
  if ((IS_ROOT)); then
    runuser -u "$ES_USER" -- "$@"
  else
    "$@"
  fi
}

es_fetch() {
  local marker=$ES_DIR/.extracted-$ES_VERSION
  if [[ -f $marker && -x $ES_HOME/bin/elasticsearch ]]; then
    log "elasticsearch: distribution cached in $ES_HOME"
    return 0
  fi
  if [[ ! -s $ES_ZIP ]]; then
    need_mvn
    log "elasticsearch: fetching integ-test-zip $ES_VERSION from Maven Central (first run only)"
    mkdir -p "$ES_DIR"
    mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$MAVEN_REPO" dependency:get \
      "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" -Dtransitive=false >"$ES_DIR/mvn.log" 2>&1 || {
      tail_log "$ES_DIR/mvn.log"
      die "elasticsearch: mvn dependency:get failed (is Maven Central reachable?)"
    }
    [[ -s $ES_ZIP ]] || die "elasticsearch: $ES_ZIP missing after dependency:get"
  fi
  command -v unzip >/dev/null || {
    if ((IS_ROOT)); then apt_install unzip; else die "unzip not found"; fi
  }
  log "elasticsearch: unpacking $ES_ZIP into $ES_DIR"
  mkdir -p "$ES_DIR"
  rm -rf "$ES_HOME"
  unzip -q -o "$ES_ZIP" -d "$ES_DIR" || die "elasticsearch: unzip failed"
  [[ -x $ES_HOME/bin/elasticsearch ]] || die "elasticsearch: bin/elasticsearch missing after unzip"
  : >"$marker"
}

es_ensure_user() {
  ((IS_ROOT)) || return 0
  if ! id -u "$ES_USER" >/dev/null 2>&1; then
    log "elasticsearch: creating system user $ES_USER (Elasticsearch refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir "$ES_DIR" --shell /usr/sbin/nologin "$ES_USER" ||
      die "elasticsearch: useradd $ES_USER failed"
  fi
  chmod 0755 "$STACK_DIR" "$ES_DIR"
  # chown the tree once after extraction (ES writes its keystore into config/), then only the writable dirs
  if [[ ! -f $ES_DIR/.chowned-$ES_VERSION ]]; then
    chown -R "$ES_USER:" "$ES_HOME"
    : >"$ES_DIR/.chowned-$ES_VERSION"
  fi
  chown "$ES_USER:" "$ES_DATA" "$ES_DIR/logs" "$ES_DIR/run" "$ES_DIR/tmp" "$ES_HOME/config" "$ES_HOME/config/elasticsearch.yml" "$ES_HOME/config/jvm.options.d"
  chown -R "$ES_USER:" "$ES_DATA" "$ES_DIR/logs"
}

es_configure() {
  mkdir -p "$ES_DATA" "$ES_DIR/logs" "$ES_DIR/run" "$ES_DIR/tmp"
  # The integ-test-zip is a minimal distribution: modules are apm, transport-netty4,
  # x-pack-core and x-pack-security only (no ingest, ILM, ML, geoip, ...). Only settings
  # registered by those modules may appear here, unknown settings abort startup.
  cat >"$ES_HOME/config/elasticsearch.yml" <<EOF
# generated by scripts/stack.sh
cluster.name: cordon
node.name: cordon-1
discovery.type: single-node
network.host: $HOST
http.port: $ES_PORT
transport.port: $ES_TRANSPORT_PORT
path.data: $ES_DATA
path.logs: $ES_DIR/logs
xpack.security.enabled: false
# never flip indices read-only because the disk is fullish
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
EOF
}

es_pid() { managed_pid "$ES_PID" "org.elasticsearch"; }

es_java_min() { if ((ES_MAJOR >= 9)); then printf 21; else printf 17; fi; }

java_major() { # java_major JAVA_BIN -> the JDK's major version
  "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {split($2, v, "."); print v[1]}'
}

es_java_home() { # prints the first JDK home new enough for this Elasticsearch
  local bin major
  for bin in ${ES_JAVA_HOME:+"$ES_JAVA_HOME/bin/java"} "$(command -v java 2>/dev/null)" /usr/lib/jvm/*/bin/java; do
    [[ -n $bin && -x $bin ]] || continue
    major=$(java_major "$bin")
    if [[ $major =~ ^[0-9]+$ ]] && ((major >= $(es_java_min))); then
      dirname "$(dirname "$(readlink -f "$bin")")"
      return 0
    fi
  done
  return 1
}

es_running_version() { # the version of the Elasticsearch answering on ES_PORT
  curl -s -m 5 "http://$HOST:$ES_PORT/_nodes/_local/version" 2>/dev/null | grep -o '"version":"[^"]*"' | head -1 | cut -d'"' -f4
}

es_healthy() { # prints status (green/yellow) when the cluster is at least yellow
  local body
  body=$(curl -s -m 5 "http://$HOST:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=3s" 2>/dev/null) || return 1
  [[ $body =~ \"status\":\"(green|yellow)\" ]] || return 1
  [[ $body == *'"timed_out":false'* ]] || return 1
  printf '%s' "${BASH_REMATCH[1]}"
}

ES_STARTED=0
es_launch() {
  local pid running
  pid=$(es_pid)
  running=$([[ -n $pid ]] && port_open "$ES_PORT" && es_running_version || true)
  if [[ -n $running && $running != "$ES_VERSION" ]]; then
    log "elasticsearch: pid $pid runs $running, this stack wants $ES_VERSION; restarting it"
    es_down
    pid=""
  fi
  if [[ -n $pid ]] && port_open "$ES_PORT"; then
    local status
    status=$(es_healthy) || {
      log "elasticsearch: pid $pid running but cluster not yet yellow; waiting for it"
      ES_STARTED=1
      return 0
    }
    log "elasticsearch: already running (pid $pid, http://$HOST:$ES_PORT, health $status)"
    return 0
  fi
  if [[ -n $pid ]]; then
    log "elasticsearch: pid $pid alive but port $ES_PORT not answering yet; waiting for it"
    ES_STARTED=1
    return 0
  fi
  if port_open "$ES_PORT"; then
    es_healthy >/dev/null ||
      die "elasticsearch: $HOST:$ES_PORT is in use by something that is not a healthy Elasticsearch"
    warn "elasticsearch: $HOST:$ES_PORT is already served by an Elasticsearch this script did not start; using it as is"
    return 0
  fi
  rm -f "$ES_PID"
  need_java
  es_fetch
  es_configure
  es_ensure_user
  local java_home
  java_home=$(es_java_home) || die "elasticsearch: $ES_VERSION needs Java $(es_java_min)+; none found on PATH or under /usr/lib/jvm (set ES_JAVA_HOME)"
  local out=$ES_DIR/logs/startup.out
  log "elasticsearch: starting $ES_VERSION on http://$HOST:$ES_PORT (heap $ES_HEAP$( ((IS_ROOT)) && printf ', as user %s' "$ES_USER"))"
  # -d daemonizes; the launcher returns once the node has started (or failed)
  # run from a directory the ES user can read (the caller's cwd may be /root)
  if ! cd "$ES_DIR" || ! es_run env ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP ${ES_JAVA_EXTRA_OPTS:-}" \
    ES_TMPDIR="$ES_DIR/tmp" HOME="$ES_DIR" \
    "$ES_HOME/bin/elasticsearch" -d -p "$ES_PID" >"$out" 2>&1 </dev/null 9>&-; then
    tail_log "$out" 40
    tail_log "$ES_DIR/logs/cordon.log" 40
    die "elasticsearch: failed to start (see $out and $ES_DIR/logs/cordon.log)"
  fi
  ES_STARTED=1
}

es_wait() {
  ((ES_STARTED)) || return 0
  local deadline=$((SECONDS + ES_WAIT_SECS)) pid status
  log "elasticsearch: waiting for cluster health yellow/green (up to ${ES_WAIT_SECS}s)"
  while ((SECONDS < deadline)); do
    pid=$(read_pid "$ES_PID")
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      tail_log "$ES_DIR/logs/cordon.log" 60
      rm -f "$ES_PID"
      die "elasticsearch: process $pid exited during startup (log: $ES_DIR/logs/cordon.log)"
    fi
    if status=$(es_healthy); then
      log "elasticsearch: ready, cluster health $status (pid ${pid:--})"
      return 0
    fi
    sleep 1
  done
  tail_log "$ES_DIR/logs/cordon.log" 60
  die "elasticsearch: cluster not yellow after ${ES_WAIT_SECS}s (log: $ES_DIR/logs/cordon.log)"
}

es_down() { stop_pid elasticsearch "$ES_PID" "org.elasticsearch"; }

es_status() {
  local pid state
  pid=$(es_pid)
  if [[ -n $pid ]] && port_open "$ES_PORT"; then
    state=running
  elif [[ -n $pid ]]; then
    state=starting
  elif port_open "$ES_PORT"; then
    state="running(external)"
  else
    state=stopped
  fi
  printf '%-14s %-18s pid=%-8s port=%s:%s\n' elasticsearch "$state" "${pid:--}" "$HOST" "$ES_PORT"
}

# ---------------------------------------------------------------- redis

redis_cmd() { # redis_cmd ARGS... -> reply on stdout
  if command -v redis-cli >/dev/null; then
    timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" "$@" 2>/dev/null
  else
    # inline protocol over /dev/tcp, enough for PING / CONFIG SET (first reply line only)
    local reply=""
    { printf '%s\r\n' "$*" >&8 && IFS= read -r -t 5 reply <&8; } 8<>"/dev/tcp/$HOST/$REDIS_PORT" 2>/dev/null || return 1
    reply=${reply%$'\r'}
    printf '%s\n' "${reply#[+:-]}"
  fi
}

redis_ping() { [[ $(redis_cmd PING) == PONG ]]; }

redis_pid() { managed_pid "$REDIS_PID" "redis-server"; }

redis_noeviction() {
  local r
  r=$(redis_cmd CONFIG SET maxmemory-policy noeviction || true)
  if [[ $r == OK ]]; then
    log "redis: maxmemory-policy noeviction"
  else
    warn "redis: could not set maxmemory-policy noeviction (reply: ${r:-none}); BullMQ needs it"
  fi
}

redis_up() {
  local pid
  pid=$(redis_pid)
  if redis_ping; then
    if [[ -n $pid ]]; then
      log "redis: already running (pid $pid, $HOST:$REDIS_PORT)"
    else
      log "redis: using the Redis already answering on $HOST:$REDIS_PORT (not started by this script; down leaves it alone)"
    fi
    redis_noeviction
    return 0
  fi
  if [[ -n $pid ]]; then
    die "redis: pid $pid alive but $HOST:$REDIS_PORT does not answer PING"
  fi
  rm -f "$REDIS_PID"
  if ! command -v redis-server >/dev/null; then
    ((IS_ROOT)) || die "redis: nothing on $HOST:$REDIS_PORT and redis-server is not installed (needs root: apt-get install redis-server)"
    apt_install redis-server
  fi
  if port_open "$REDIS_PORT"; then
    die "redis: $HOST:$REDIS_PORT is in use by something that does not answer PING"
  fi
  mkdir -p "$REDIS_DIR"
  log "redis: starting redis-server on $HOST:$REDIS_PORT (no persistence)"
  redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$REDIS_DIR" --pidfile "$REDIS_PID" --logfile "$REDIS_DIR/redis.log" \
    --maxmemory-policy noeviction >&2 9>&- || die "redis: redis-server failed to start"
  local deadline=$((SECONDS + REDIS_WAIT_SECS))
  until redis_ping; do
    if ((SECONDS >= deadline)); then
      tail_log "$REDIS_DIR/redis.log"
      die "redis: not answering PING after ${REDIS_WAIT_SECS}s"
    fi
    sleep 0.2
  done
  log "redis: ready (pid $(redis_pid))"
  redis_noeviction
}

redis_down() {
  if [[ ! -e $REDIS_PID ]] && redis_ping; then
    log "redis: running but not started by this script; leaving it alone"
    return 0
  fi
  stop_pid redis "$REDIS_PID" "redis-server"
}

redis_status() {
  local pid state
  pid=$(redis_pid)
  if redis_ping; then
    if [[ -n $pid ]]; then state=running; else state="running(external)"; fi
  else
    state=stopped
  fi
  printf '%-14s %-18s pid=%-8s port=%s:%s\n' redis "$state" "${pid:--}" "$HOST" "$REDIS_PORT"
}

# ---------------------------------------------------------------- nftables

nft_up() {
  local missing=()
  command -v nft >/dev/null || missing+=(nftables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v ip >/dev/null || missing+=(iproute2)
  if ((${#missing[@]})); then
    if ((IS_ROOT)); then
      apt_install "${missing[@]}"
    else
      warn "nftables: missing ${missing[*]} and not root; the host enforcer tests will be skipped"
      return 0
    fi
  fi
  if ((!IS_ROOT)); then
    warn "nftables: not root; the host enforcer tests will be skipped"
    return 0
  fi
  if nft list tables >/dev/null 2>&1; then
    log "nftables: ready ($(nft --version 2>/dev/null | head -n1); conntrack and ip present)"
  else
    warn "nftables: nft is installed but cannot talk to the kernel (missing CAP_NET_ADMIN?); host enforcer tests will be skipped"
  fi
}

nft_down() { log "nftables: nothing to stop (no daemon)"; }

nft_status() {
  local state detail
  if ! command -v nft >/dev/null; then
    state=missing
    detail="nft not installed"
  elif ((!IS_ROOT)); then
    state=unprivileged
    detail="$(nft --version 2>/dev/null | head -n1); not root, enforcer tests skipped"
  elif nft list tables >/dev/null 2>&1; then
    state=available
    detail="$(nft --version 2>/dev/null | head -n1)"
    command -v conntrack >/dev/null || detail+="; conntrack missing"
  else
    state=unusable
    detail="nft cannot reach the kernel"
  fi
  printf '%-14s %-18s pid=%-8s port=%s (%s)\n' nftables "$state" - - "$detail"
}

# ---------------------------------------------------------------- commands

# normalise component names into COMPONENTS, in start order
COMPONENTS=()
select_components() {
  local c
  if (($# == 0)); then
    COMPONENTS=("${ALL_COMPONENTS[@]}")
    return 0
  fi
  local want=" "
  for c in "$@"; do
    case $c in
      kafka) want+="kafka " ;;
      elasticsearch | es | elastic) want+="elasticsearch " ;;
      redis) want+="redis " ;;
      nftables | nft) want+="nftables " ;;
      all) want+="${ALL_COMPONENTS[*]} " ;;
      *) die "unknown component '$c' (expected kafka, elasticsearch, redis, nftables)" ;;
    esac
  done
  for c in "${ALL_COMPONENTS[@]}"; do
    if [[ $want == *" $c "* ]]; then COMPONENTS+=("$c"); fi
  done
  return 0
}

has() { [[ " ${COMPONENTS[*]} " == *" $1 "* ]]; }

with_lock() {
  ensure_stack_dir
  exec 9>"$STACK_DIR/.lock"
  if ! flock -w 300 9; then
    die "another stack.sh is holding $STACK_DIR/.lock for more than 300s"
  fi
}

cmd_up() {
  with_lock
  local t0=$SECONDS
  log "up: ${COMPONENTS[*]} (stack dir $STACK_DIR)"
  has redis && redis_up
  has nftables && nft_up
  # launch both JVMs first (Kafka in the background), then wait for both
  has kafka && kafka_launch
  has elasticsearch && es_launch
  has kafka && kafka_wait
  has kafka && kafka_grant_access
  has elasticsearch && es_wait
  log "up: done in $((SECONDS - t0))s"
  local env_line=()
  has kafka && env_line+=("KAFKA_BROKERS=$HOST:$KAFKA_PORT")
  has kafka && log "kafka: SASL_SSL $HOST:$KAFKA_SASL_SSL_PORT (SCRAM-SHA-256/512) and SSL $HOST:$KAFKA_MTLS_PORT (client certificate required): CA, certificates and passwords of ${KAFKA_USERS[*]} in $KAFKA_SECURITY"
  has elasticsearch && env_line+=("ES_URL=http://$HOST:$ES_PORT")
  has redis && env_line+=("REDIS_URL=redis://$HOST:$REDIS_PORT")
  if ((${#env_line[@]})); then
    log "client environment:"
    printf 'export %s\n' "${env_line[@]}"
  fi
}

cmd_down() {
  with_lock
  log "down: ${COMPONENTS[*]}"
  has elasticsearch && es_down
  has kafka && kafka_down
  has redis && redis_down
  has nftables && nft_down
  return 0
}

cmd_status() {
  has kafka && kafka_status
  has elasticsearch && es_status
  has redis && redis_status
  has nftables && nft_status
  return 0
}

main() {
  (($# >= 1)) || usage
  local cmd=$1
  shift
  select_components "$@"
  ((${#COMPONENTS[@]})) || die "no components selected"
  case $cmd in
    up | start) cmd_up ;;
    down | stop) cmd_down ;;
    restart)
      (($# >= 1)) || die "restart needs a component (kafka, elasticsearch, redis)"
      cmd_down
      cmd_up
      ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
