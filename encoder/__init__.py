"""Image IO, the ViT backbone, anatomy queries and box heads (to come: see the model issue)."""
