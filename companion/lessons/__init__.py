"""The lessons: one module per notebook topic, named nNN_topic after the notebook that teaches it."""
