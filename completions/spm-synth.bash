_spm__synth() {
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
                cmd="spm__synth"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        spm__synth)
            opts="-o -h -V --seed --date --start --duration --scenario --out-dir --es-symbol --es-start --event-rate --busy-multiplier --volatility --atm-vol --option-rate --spy-rate --spy-basis --strike-range --depth-scale --trade-share --zstd-level --no-zstd --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --seed)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --date)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --start)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --duration)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scenario)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --out-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -o)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --es-symbol)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --es-start)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --event-rate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --busy-multiplier)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --volatility)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --atm-vol)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --option-rate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --spy-rate)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --spy-basis)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --strike-range)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --depth-scale)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --trade-share)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --zstd-level)
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
    complete -F _spm__synth -o nosort -o bashdefault -o default spm-synth
else
    complete -F _spm__synth -o bashdefault -o default spm-synth
fi
