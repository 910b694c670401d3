"""Pure logic of the Claude enrichment: breaker, budget, context, answers, fallback."""
