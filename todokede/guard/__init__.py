"""``todokede guard``: follow logs, count failures per address, ban through hosts.deny,
nftables, a command or a JSON line, keep the bans in SQLite, and report them.

    config      the TOML file: [guard] and [jail.NAME] tables
    detectors   which lines are failures (built-in detectors, fail2ban filters)
    sources     text logs (tail -F) and the systemd journal
    counter     failures per address within findtime, in bounded memory
    state       bans, repeat offenders and reports in SQLite
    actions     hosts.deny host list, nftables set, command hook, JSON line
    reports     report drafts and submissions to a center
    watch       the guard: all of the above joined
"""
