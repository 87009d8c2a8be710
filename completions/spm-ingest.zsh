#compdef spm-ingest

autoload -U is-at-least

_spm-ingest() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--source=[The feed to read]:SOURCE:((databento\:"Databento Live (raw TCP gateway; DATABENTO_API_KEY)\: one session per dataset"
massive\:"Massive (Polygon) WebSocket (MASSIVE_API_KEY or POLYGON_API_KEY)\: SPY and its 0DTE options"
stdin\:"DBN bytes on stdin (plain or zstd)\: a saved live session or \`dbn\` CLI output"))' \
'--output=[Where events go \[default\: stdout when stdout is a pipe or a file, else nats\]]:OUTPUT:(stdout nats)' \
'--format=[Pipe format on stdout]:FORMAT:((ndjson\:"One JSON object per line\: the contract"
bin\:"The compact binary framing of the same events (pipes only)"))' \
'--event-source=[The \`source\` field of every event \[default\: direct_feed for databento, massive_ws for massive, replay for stdin (so that a file piped in equals \`spm-replay\` of it)\]]:NAME:_default' \
'--queue=[Events held between the feeds and the output; when full, a live feed'\''s events are dropped and reported as a gap (stdin waits instead)]:EVENTS:_default' \
'--stats-secs=[Log throughput and latency (now − ts_recv, ts_recv − ts_event) this often; 0 = never]:SECS:_default' \
'--databento-key=[Databento API key (never printed or logged)]:KEY:_default' \
'--gateway=[Live gateway for every session \[default\: DATASET.lsg.databento.com\:13000, with the dataset lowercased and its dots turned into dashes, e.g. glbx-mdp3.lsg.databento.com\]]:HOST:PORT:_default' \
'*--dataset=[A dataset to open a live session on (repeatable). The --schema and --symbols options that follow it, up to the next --dataset, belong to it. Without any --dataset\: GLBX.MDP3 mbp-10,trades of ES.FUT; OPRA.PILLAR definition,tcbbo of SPY.OPT (0DTE trades); XNAS.ITCH trades of SPY]:DATASET:_default' \
'*--schema=[Schemas of the preceding --dataset, comma-separated or repeated \[default by market\: futures mbp-10,trades; options definition,tcbbo; equities trades\]]:SCHEMA:_default' \
'*--symbols=[Symbols of the preceding --dataset, comma-separated or repeated \[default by market\: futures ES.FUT; options SPY.OPT; equities SPY\]]:SYMBOLS:_default' \
'--stype-in=[Input symbology of every symbol \[default\: parent for ROOT.FUT / ROOT.OPT, continuous for ROOT.c.0-style names, raw_symbol otherwise\]]:STYPE:_default' \
'--start=[Replay the session from this time (intraday replay; ISO-8601 or nanoseconds) instead of starting live]:TIME:_default' \
'--heartbeat-s=[Heartbeat interval asked of the gateway, in seconds (Databento'\''s minimum is 5). With no byte for the interval plus max(interval/2, 1 s), the connection is taken as dead and reopened]:SECONDS:_default' \
'--slow-reader=[What the gateway does when spm-ingest falls behind\: warn (buffer and warn) or skip (drop records to catch up); both are reported as gaps]:BEHAVIOR:((warn\:"Keep buffering and send a slow-reader warning (reported as a gap status)"
skip\:"Skip records to catch up, then say how many (reported as a gap with the count)"))' \
'--compression=[Compression of the live stream]:COMPRESSION:(none zstd)' \
'--massive-key=[Massive API key (falls back to POLYGON_API_KEY). Never printed]:KEY:_default' \
'--massive-url=[Massive WebSocket base URL\: the stocks cluster is URL/stocks, options URL/options]:URL:_default' \
'--underlying=[Underlying\: its trades and quotes, and its options expiring today]:SYMBOL:_default' \
'--strikes=[Options subscribed\: strikes within this many dollars of spot]:DOLLARS:_default' \
'--max-option-contracts=[At most this many option contracts (Massive'\''s per-connection quote limit), nearest strikes first]:N:_default' \
'--recenter=[Re-centre the options window when spot has moved more than this many dollars]:DOLLARS:_default' \
'--massive-expiration=[Expiration of the options followed \[default\: today in US/Eastern, i.e. 0DTE\]]:YYYY-MM-DD:_default' \
'--massive-idle-timeout-s=[Reconnect when nothing arrives for this many seconds (0\: never; Massive sends no heartbeats, so a quiet market trips a short timeout)]:SECONDS:_default' \
'--massive-connect-timeout-s=[Give up an attempt that has not connected and authenticated within this many seconds (0\: no limit)]:SECONDS:_default' \
'--massive-limit-retries=[\`max_connections\` answers retried (with the backoff) within an hour; one more is fatal]:N:_default' \
'--nats-url=[NATS server URL (\`nats\://\`, \`tls\://\`; \`user\:pass@\` or a token in the URL are honoured), or a comma-separated list of a cluster'\''s servers\: the client connects to any of them and reconnects to another when one goes away]:NATS_URL:_default' \
'--nats-creds=[NATS credentials file (JWT + NKey seed)]:FILE:_files' \
'--nats-token=[NATS authentication token]:NATS_TOKEN:_default' \
'--nats-user=[NATS user name (with \`--nats-password\`)]:NATS_USER:_default' \
'--nats-password=[NATS password]:NATS_PASSWORD:_default' \
'--nats-ca=[PEM file of root certificates to trust for TLS]:FILE:_files' \
'--nats-cert=[PEM client certificate for mutual TLS (with \`--nats-key\`)]:FILE:_files' \
'--nats-key=[PEM private key of the client certificate]:FILE:_files' \
'--nats-connect-wait=[How long to keep trying to reach the server at startup, in seconds]:SECS:_default' \
'--stream-storage=[Storage of streams this command creates]:STORAGE:(file memory)' \
'--stream-max-age=[Maximum age of messages in streams this command creates, in seconds]:SECS:_default' \
'--stream-duplicate-window=[Deduplication window (\`Nats-Msg-Id\`) of streams this command creates, in seconds]:SECS:_default' \
'--stream-max-bytes=[Maximum size of each stream this command creates, in bytes (-1\: unlimited)]:BYTES:_default' \
'--stream-persist-mode=[Persistence of the market-data stream this command creates (\`async\`\: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use \`default\`]:PERSIST_MODE:((default\:"Acknowledge once the message is handed to the file store (the server'\''s default)"
async\:"Acknowledge before the write and group writes (R1 file streams)\: a hard kill of the server can lose the last acknowledged messages"))' \
'--stream-allow-batched=[Allow the fast-ingest batch protocol on streams this command creates (needed by \`spm-replay --output nats\` at full speed)]:BOOL:(true false)' \
'--stream-replicas=[Replicas of each stream this command creates (a cluster keeps each message on this many servers\: 3 survives the loss of any one; at most 5). Replicated streams persist in the server'\''s default mode whatever --stream-persist-mode says]:N:_default' \
'--all-expiries[Publish option trades of every expiry, not only those expiring on the trade'\''s date]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
}

(( $+functions[_spm-ingest_commands] )) ||
_spm-ingest_commands() {
    local commands; commands=()
    _describe -t commands 'spm-ingest commands' commands "$@"
}

if [ "$funcstack[1]" = "_spm-ingest" ]; then
    _spm-ingest "$@"
else
    compdef _spm-ingest spm-ingest
fi
