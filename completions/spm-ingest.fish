complete -c spm-ingest -l source -d 'The feed to read' -r -f -a "databento\t'Databento Live (raw TCP gateway; DATABENTO_API_KEY): one session per dataset'
massive\t'Massive (Polygon) WebSocket (MASSIVE_API_KEY or POLYGON_API_KEY): SPY and its 0DTE options'
stdin\t'DBN bytes on stdin (plain or zstd): a saved live session or `dbn` CLI output'"
complete -c spm-ingest -l output -d 'Where events go [default: stdout when stdout is a pipe or a file, else nats]' -r -f -a "stdout\t''
nats\t''"
complete -c spm-ingest -l format -d 'Pipe format on stdout' -r -f -a "ndjson\t'One JSON object per line: the contract'
bin\t'The compact binary framing of the same events (pipes only)'"
complete -c spm-ingest -l event-source -d 'The `source` field of every event [default: direct_feed for databento, massive_ws for massive, replay for stdin (so that a file piped in equals `spm-replay` of it)]' -r
complete -c spm-ingest -l queue -d 'Events held between the feeds and the output; when full, a live feed\'s events are dropped and reported as a gap (stdin waits instead)' -r
complete -c spm-ingest -l stats-secs -d 'Log throughput and latency (now − ts_recv, ts_recv − ts_event) this often; 0 = never' -r
complete -c spm-ingest -l databento-key -d 'Databento API key (never printed or logged)' -r
complete -c spm-ingest -l gateway -d 'Live gateway for every session [default: DATASET.lsg.databento.com:13000, with the dataset lowercased and its dots turned into dashes, e.g. glbx-mdp3.lsg.databento.com]' -r
complete -c spm-ingest -l dataset -d 'A dataset to open a live session on (repeatable). The --schema and --symbols options that follow it, up to the next --dataset, belong to it. Without any --dataset: GLBX.MDP3 mbp-10,trades of ES.FUT; OPRA.PILLAR definition,tcbbo of SPY.OPT (0DTE trades); XNAS.ITCH trades of SPY' -r
complete -c spm-ingest -l schema -d 'Schemas of the preceding --dataset, comma-separated or repeated [default by market: futures mbp-10,trades; options definition,tcbbo; equities trades]' -r
complete -c spm-ingest -l symbols -d 'Symbols of the preceding --dataset, comma-separated or repeated [default by market: futures ES.FUT; options SPY.OPT; equities SPY]' -r
complete -c spm-ingest -l stype-in -d 'Input symbology of every symbol [default: parent for ROOT.FUT / ROOT.OPT, continuous for ROOT.c.0-style names, raw_symbol otherwise]' -r
complete -c spm-ingest -l start -d 'Replay the session from this time (intraday replay; ISO-8601 or nanoseconds) instead of starting live' -r
complete -c spm-ingest -l heartbeat-s -d 'Heartbeat interval asked of the gateway, in seconds (Databento\'s minimum is 5). With no byte for the interval plus max(interval/2, 1 s), the connection is taken as dead and reopened' -r
complete -c spm-ingest -l slow-reader -d 'What the gateway does when spm-ingest falls behind: warn (buffer and warn) or skip (drop records to catch up); both are reported as gaps' -r -f -a "warn\t'Keep buffering and send a slow-reader warning (reported as a gap status)'
skip\t'Skip records to catch up, then say how many (reported as a gap with the count)'"
complete -c spm-ingest -l compression -d 'Compression of the live stream' -r -f -a "none\t''
zstd\t''"
complete -c spm-ingest -l massive-key -d 'Massive API key (falls back to POLYGON_API_KEY). Never printed' -r
complete -c spm-ingest -l massive-url -d 'Massive WebSocket base URL: the stocks cluster is URL/stocks, options URL/options' -r
complete -c spm-ingest -l underlying -d 'Underlying: its trades and quotes, and its options expiring today' -r
complete -c spm-ingest -l strikes -d 'Options subscribed: strikes within this many dollars of spot' -r
complete -c spm-ingest -l max-option-contracts -d 'At most this many option contracts (Massive\'s per-connection quote limit), nearest strikes first' -r
complete -c spm-ingest -l recenter -d 'Re-centre the options window when spot has moved more than this many dollars' -r
complete -c spm-ingest -l massive-expiration -d 'Expiration of the options followed [default: today in US/Eastern, i.e. 0DTE]' -r
complete -c spm-ingest -l massive-idle-timeout-s -d 'Reconnect when nothing arrives for this many seconds (0: never; Massive sends no heartbeats, so a quiet market trips a short timeout)' -r
complete -c spm-ingest -l massive-connect-timeout-s -d 'Give up an attempt that has not connected and authenticated within this many seconds (0: no limit)' -r
complete -c spm-ingest -l massive-limit-retries -d '`max_connections` answers retried (with the backoff) within an hour; one more is fatal' -r
complete -c spm-ingest -l nats-url -d 'NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured), or a comma-separated list of a cluster\'s servers: the client connects to any of them and reconnects to another when one goes away' -r
complete -c spm-ingest -l nats-creds -d 'NATS credentials file (JWT + NKey seed)' -r -F
complete -c spm-ingest -l nats-token -d 'NATS authentication token' -r
complete -c spm-ingest -l nats-user -d 'NATS user name (with `--nats-password`)' -r
complete -c spm-ingest -l nats-password -d 'NATS password' -r
complete -c spm-ingest -l nats-ca -d 'PEM file of root certificates to trust for TLS' -r -F
complete -c spm-ingest -l nats-cert -d 'PEM client certificate for mutual TLS (with `--nats-key`)' -r -F
complete -c spm-ingest -l nats-key -d 'PEM private key of the client certificate' -r -F
complete -c spm-ingest -l nats-connect-wait -d 'How long to keep trying to reach the server at startup, in seconds' -r
complete -c spm-ingest -l stream-storage -d 'Storage of streams this command creates' -r -f -a "file\t''
memory\t''"
complete -c spm-ingest -l stream-max-age -d 'Maximum age of messages in streams this command creates, in seconds' -r
complete -c spm-ingest -l stream-duplicate-window -d 'Deduplication window (`Nats-Msg-Id`) of streams this command creates, in seconds' -r
complete -c spm-ingest -l stream-max-bytes -d 'Maximum size of each stream this command creates, in bytes (-1: unlimited)' -r
complete -c spm-ingest -l stream-persist-mode -d 'Persistence of the market-data stream this command creates (`async`: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use `default`' -r -f -a "default\t'Acknowledge once the message is handed to the file store (the server\'s default)'
async\t'Acknowledge before the write and group writes (R1 file streams): a hard kill of the server can lose the last acknowledged messages'"
complete -c spm-ingest -l stream-allow-batched -d 'Allow the fast-ingest batch protocol on streams this command creates (needed by `spm-replay --output nats` at full speed)' -r -f -a "true\t''
false\t''"
complete -c spm-ingest -l stream-replicas -d 'Replicas of each stream this command creates (a cluster keeps each message on this many servers: 3 survives the loss of any one; at most 5). Replicated streams persist in the server\'s default mode whatever --stream-persist-mode says' -r
complete -c spm-ingest -l all-expiries -d 'Publish option trades of every expiry, not only those expiring on the trade\'s date'
complete -c spm-ingest -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-ingest -s V -l version -d 'Print version'
