"""Knowledge enrichment, alignment heads, losses, training and evaluation (to come: see the model issue)."""
