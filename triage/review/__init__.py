"""Human review: the Label Studio queue, its durable outbox, and the labels that come back."""
