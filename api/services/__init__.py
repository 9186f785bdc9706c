"""What the routes call: one function per operation, no FastAPI types beyond ``ServiceError``."""
