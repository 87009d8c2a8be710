complete -c spm-eval -l input -d 'Where snaps come from [default: stdin when it is a pipe or a file, else NATS `levels.signals`, read until SIGINT/SIGTERM]' -r -f -a "stdin\t''
nats\t''"
complete -c spm-eval -l count -d 'With NATS input: stop after this many snaps' -r
complete -c spm-eval -l target -d '$ beyond (BREAK) or away from (REJECT) the level that makes a win' -r
complete -c spm-eval -l stop -d '$ through the level the other way that makes a loss' -r
complete -c spm-eval -l horizon -d 'Event time after the call within which the outcome must come: `120s`, `2m`, `90`' -r
complete -c spm-eval -l touch-band -d 'How close spot must come to a level to count as a touch for the base rate [default: the engine\'s `touch_band`, $0.05]' -r
complete -c spm-eval -l format -d 'Report format on stdout' -r -f -a "table\t''
json\t''
csv\t''"
complete -c spm-eval -l calls -d 'Also write one row per call to this CSV file' -r -F
complete -c spm-eval -l plot -d 'Also draw the session (spot, levels, calls) into this SVG file' -r -F
complete -c spm-eval -l sweep -d 'Tuning: re-run the engine over FILES for each value of a physics constant (`KEY=V1,V2,...`; twice for a grid of two) and print the edge of each' -r
complete -c spm-eval -l config -d 'With --sweep: TOML file of physics constants the sweep starts from' -r -F
complete -c spm-eval -l nats-url -d 'NATS server URL (`nats://`, `tls://`; `user:pass@` or a token in the URL are honoured), or a comma-separated list of a cluster\'s servers: the client connects to any of them and reconnects to another when one goes away' -r
complete -c spm-eval -l nats-creds -d 'NATS credentials file (JWT + NKey seed)' -r -F
complete -c spm-eval -l nats-token -d 'NATS authentication token' -r
complete -c spm-eval -l nats-user -d 'NATS user name (with `--nats-password`)' -r
complete -c spm-eval -l nats-password -d 'NATS password' -r
complete -c spm-eval -l nats-ca -d 'PEM file of root certificates to trust for TLS' -r -F
complete -c spm-eval -l nats-cert -d 'PEM client certificate for mutual TLS (with `--nats-key`)' -r -F
complete -c spm-eval -l nats-key -d 'PEM private key of the client certificate' -r -F
complete -c spm-eval -l nats-connect-wait -d 'How long to keep trying to reach the server at startup, in seconds' -r
complete -c spm-eval -l stream-storage -d 'Storage of streams this command creates' -r -f -a "file\t''
memory\t''"
complete -c spm-eval -l stream-max-age -d 'Maximum age of messages in streams this command creates, in seconds' -r
complete -c spm-eval -l stream-duplicate-window -d 'Deduplication window (`Nats-Msg-Id`) of streams this command creates, in seconds' -r
complete -c spm-eval -l stream-max-bytes -d 'Maximum size of each stream this command creates, in bytes (-1: unlimited)' -r
complete -c spm-eval -l stream-persist-mode -d 'Persistence of the market-data stream this command creates (`async`: acknowledged before the write, about 1.5 times faster; a hard kill of the server can lose the last messages, which a re-run replay publishes again). Signal and feed streams always use `default`' -r -f -a "default\t'Acknowledge once the message is handed to the file store (the server\'s default)'
async\t'Acknowledge before the write and group writes (R1 file streams): a hard kill of the server can lose the last acknowledged messages'"
complete -c spm-eval -l stream-allow-batched -d 'Allow the fast-ingest batch protocol on streams this command creates (needed by `spm-replay --output nats` at full speed)' -r -f -a "true\t''
false\t''"
complete -c spm-eval -l stream-replicas -d 'Replicas of each stream this command creates (a cluster keeps each message on this many servers: 3 survives the loss of any one; at most 5). Replicated streams persist in the server\'s default mode whatever --stream-persist-mode says' -r
complete -c spm-eval -l from-start -d 'With NATS input: start from the retained history instead of new snaps'
complete -c spm-eval -l strict -d 'Stop at the first malformed input item (exit 1) instead of skipping it'
complete -c spm-eval -s h -l help -d 'Print help (see more with \'--help\')'
complete -c spm-eval -s V -l version -d 'Print version'
