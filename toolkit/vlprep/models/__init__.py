"""Model families: everything that belongs to one (vlprep.models.family), and which one a folder is (registry)."""
