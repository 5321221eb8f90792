# bash completion for poise (written by `python -m poise.cli.manual` from its parser)
_poise() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "run reload check demo ctl cert vrrp doctor version" -- "$cur")); return
    fi
    case "${COMP_WORDS[1]}" in
        run)
            case "$prev" in -f|-p|-x) COMPREPLY=($(compgen -f -- "$cur")); return;; esac
            COMPREPLY=($(compgen -W "-h --help -f -db -D -p -q -W -Ws -L -x -sf -st" -- "$cur"));;
        reload)
            case "$prev" in -p|-f) COMPREPLY=($(compgen -f -- "$cur")); return;; esac
            COMPREPLY=($(compgen -W "-h --help -p -f" -- "$cur"));;
        check)
            case "$prev" in -f|-k) COMPREPLY=($(compgen -f -- "$cur")); return;; esac
            COMPREPLY=($(compgen -W "-h --help -f -k -W -Ws -q" -- "$cur"));;
        demo)
            COMPREPLY=($(compgen -W "-h --help --port --duration" -- "$cur"));;
        ctl)
            case "$prev" in -S|--socket) COMPREPLY=($(compgen -f -- "$cur")); return;; esac
            COMPREPLY=($(compgen -W "-h --help -S --socket -t --timeout" -- "$cur"));;
        cert)
            COMPREPLY=($(compgen -W "-h --help" -- "$cur"));;
        vrrp)
            case "$prev" in -f|--use-file|-p|--pid|-r|--vrrp_pid) COMPREPLY=($(compgen -f -- "$cur")); return;; esac
            COMPREPLY=($(compgen -W "-h --help --version -f --use-file -D -db -n --dont-fork --log-detail -l --log-console -p --pid -r --vrrp_pid -P --vrrp -t --config-test" -- "$cur"));;
        doctor)
            case "$prev" in --ca) COMPREPLY=($(compgen -f -- "$cur")); return;; esac
            COMPREPLY=($(compgen -W "-h --help --ca --resolve --nameserver -f -k --websocket --requests --idle --timeout --server-header --json" -- "$cur"));;
        version)
            COMPREPLY=($(compgen -W "-h --help" -- "$cur"));;
    esac
}
complete -F _poise poise
