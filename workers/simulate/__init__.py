"""`billing simulate`: one org through its life on the real workflows and activities (SIMULATE.md).

command (the CLI's body: limits, signals, exit codes) -> run (the harness: clock, settling,
actions) -> scenario (the file, parsed and checked, on fields' typed readers), history (is the
workflow done?), timeline (what is printed), table, database, guard, mail, clock."""
