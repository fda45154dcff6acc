"""The pure core: domain types, NHS codes, the calendar, facts, the ruleset loader, the interpreter and
the decisions. Nothing here touches the store, the service, the clock or the network."""
