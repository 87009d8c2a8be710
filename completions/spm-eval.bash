_spm__eval() {
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
                cmd="spm__eval"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        spm__eval)
            opts="-h -V --input --from-start --count --target --stop --horizon --touch-band --format --calls --plot --strict --sweep --config --nats-url --nats-creds --nats-token --nats-user --nats-password --nats-ca --nats-cert --nats-key --nats-connect-wait --stream-storage --stream-max-age --stream-duplicate-window --stream-max-bytes --stream-persist-mode --stream-allow-batched --stream-replicas --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --input)
                    COMPREPLY=($(compgen -W "stdin nats" -- "${cur}"))
                    return 0
                    ;;
                --count)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --target)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stop)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --horizon)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --touch-band)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --format)
                    COMPREPLY=($(compgen -W "table json csv" -- "${cur}"))
                    return 0
                    ;;
                --calls)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --plot)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --sweep)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
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
    complete -F _spm__eval -o nosort -o bashdefault -o default spm-eval
else
    complete -F _spm__eval -o bashdefault -o default spm-eval
fi
