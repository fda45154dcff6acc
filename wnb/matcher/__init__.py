"""The rule matcher adapter: durable-rules (the only place that imports `durable`) and the helper process
it runs in."""
