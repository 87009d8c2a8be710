_spm__ingest() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="spm__ingest"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        spm__ingest)
            opts="-h -V --source --output --format --event-source --queue --stats-secs --databento-key --gateway --dataset --schema --symbols --stype-in --start --heartbeat-s --slow-reader --compression --all-expiries --massive-key --massive-url --underlying --strikes --max-option-contracts --recenter --massive-expiration --massive-idle-timeout-s --massive-connect-timeout-s --massive-limit-retries --nats-url --nats-creds --nats-token --nats-user --nats-password --nats-ca --nats-cert --nats-key --nats-connect-wait --stream-storage --stream-max-age --stream-duplicate-window --stream-max-bytes --stream-persist-mode --stream-allow-batched --stream-replicas --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --source)
                    COMPREPLY=($(compgen -W "databento massive stdin" -- "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -W "stdout nats" -- "${cur}"))
                    return 0
                    ;;
                --format)
                    COMPREPLY=($(compgen -W "ndjson bin" -- "${cur}"))
                    return 0
                    ;;
                --event-source)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --queue)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stats-secs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --databento-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gateway)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --dataset)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --schema)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --symbols)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stype-in)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --start)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --heartbeat-s)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --slow-reader)
                    COMPREPLY=($(compgen -W "warn skip" -- "${cur}"))
                    return 0
                    ;;
                --compression)
                    COMPREPLY=($(compgen -W "none zstd" -- "${cur}"))
                    return 0
                    ;;
                --massive-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --massive-url)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --underlying)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --strikes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-option-contracts)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --recenter)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --massive-expiration)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --massive-idle-timeout-s)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --massive-connect-timeout-s)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --massive-limit-retries)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-url)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-creds)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-token)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-password)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-ca)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-cert)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nats-connect-wait)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stream-storage)
                    COMPREPLY=($(compgen -W "file memory" -- "${cur}"))
                    return 0
                    ;;
                --stream-max-age)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stream-duplicate-window)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stream-max-bytes)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stream-persist-mode)
                    COMPREPLY=($(compgen -W "default async" -- "${cur}"))
                    return 0
                    ;;
                --stream-allow-batched)
                    COMPREPLY=($(compgen -W "true false" -- "${cur}"))
                    return 0
                    ;;
                --stream-replicas)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _spm__ingest -o nosort -o bashdefault -o default spm-ingest
else
    complete -F _spm__ingest -o bashdefault -o default spm-ingest
fi
