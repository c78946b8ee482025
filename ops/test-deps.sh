#!/usr/bin/env bash
# What `make test` needs beyond the Python packages: Java 17 and Maven for the real Cassandra the
# store tests start (jars come from Maven Central through ops/cassandra/pom.xml), Debian's chromium
# and chromedriver for the browser tests, promtool (Debian's prometheus) to check ops/ configs, and tmux,
# the terminal the `parley chat` tests type into.
# Installed from Debian's packages when missing and we may (root with apt-get); otherwise says what
# to install.
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (the Cassandra, browser, ops and chat tests need them)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "the tests need: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
case "$major" in
  11|17) echo "java $major (Cassandra 5.0 runs on 11 and 17)" ;;
  *) echo "java ${major:-?} on PATH, but Cassandra 5.0 needs Java 11 or 17: install openjdk-17-jre-headless" \
          "and put it first on PATH (or set JAVA_HOME)" >&2
     [ -n "${JAVA_HOME:-}" ] || exit 1 ;;
esac
"$1" -m parley.tools.cassandra_runner jars >/dev/null  # resolve the jars once (cached after the first run)
