complete -c spm-gateway -l input -d 'Where payloads come from: `level_signals` events on stdin (NDJSON or the binary framing), or the `levels.signals` subject on NATS [default: stdin when it is a pipe or a file, else nats]' -r -f -a "stdin\t''
nats\t''"
complete -c spm-gateway -l bind -d 'Address to listen on (127.0.0.1: this machine only; 0.0.0.0 for every interface)' -r
complete -c spm-gateway -l port -d 'Port to listen on (0: any free port, printed at start)' -r
complete -c spm-gateway -l token -d 'Bearer token required on every route but /health (`Authorization: Bearer …`, or `?token=…` for browsers)' -r
complete -c spm-gateway -l allow-origin -d 'A browser origin allowed to open /ws/stream besides the gateway\'s own (repeatable; `*` allows any)' -r
complete -c spm-gateway -l max-clients -d 'Most WebSocket clients at once; more are refused with 503' -r
complete -c spm-gateway -l client-queue -d 'Payloads a client\'s queue holds; when full, the oldest gives way to the newest' -r
complete -c spm-gateway -l stall-timeout -d 'Evict a client (close 1008) that has not read for this long: a write that does not complete, or no pong to the pings' -r
complete -c spm-gateway -l ping-interval -d 'Interval of the keep-alive pings (shorter than --stall-timeout)' -r
complete -c spm-gateway -l stale-after -d '/health answers 503 when no payload arrived for this long' -r
complete -c spm-gateway -l history -d 'Event time of spot and calls kept for a dashboard opened mid-session' -r
complete -c spm-gateway -l nats-url -d 'NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured), or a comma-separated list of a cluster\'s servers: the client connects to any of them and reconnects to another when one goes away' -r
complete -c spm-gateway -l nats-creds -d 'NATS credentials file (JWT + NKey seed)' -r -F
complete -c spm-gateway -l nats-token -d 'NATS authentication token' -r
complete -c spm-gateway -l nats-user -d 'NATS user name (with `--nats-password`)' -r
complete -c spm-gateway -l nats-password -d 'NATS password' -r
complete -c spm-gateway -l nats-ca -d 'PEM file of root certificates to trust for TLS' -r -F
complete -c spm-gateway -l nats-cert -d 'PEM client certificate for mutual TLS (with `--nats-key`)' -r -F
complete -c spm-gateway -l nats-key -d 'PEM private key of the client certificate' -r -F
complete -c spm-gateway -l nats-connect-wait -d 'How long to keep trying to reach the server at startup, in seconds' -r
complete -c spm-gateway -l stream-storage -d 'Storage of streams this command creates' -r -f -a "file\t''
memory\t''"
complete -c spm-gateway -l stream-max-age -d 'Maximum age of messages in streams this command creates, in seconds' -r
complete -c spm-gateway -l stream-duplicate-window -d 'Deduplication window (`Nats-Msg-Id`) of streams this command creates, in seconds' -r
complete -c spm-gateway -l stream-max-bytes -d 'Maximum size of each stream this command creates, in bytes (-1: unlimited)' -r
complete -c spm-gateway -l stream-persist-mode -d 'Persistence of the market-data stream this command creates (`async`: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use `default`' -r -f -a "default\t'Acknowledge once the message is handed to the file store (the server\'s default)'
async\t'Acknowledge before the write and group writes (R1 file streams): a hard kill of the server can lose the last acknowledged messages'"
complete -c spm-gateway -l stream-allow-batched -d 'Allow the fast-ingest batch protocol on streams this command creates (needed by `spm-replay --output nats` at full speed)' -r -f -a "true\t''
false\t''"
complete -c spm-gateway -l stream-replicas -d 'Replicas of each stream this command creates (a cluster keeps each message on this many servers: 3 survives the loss of any one; at most 5). Replicated streams persist in the server\'s default mode whatever --stream-persist-mode says' -r
complete -c spm-gateway -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-gateway -s V -l version -d 'Print version'
