"""``colorbench reproduce``: a study file run through the sweep machinery, rendered beside its published table."""
