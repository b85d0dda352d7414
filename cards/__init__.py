"""Dataset-card section templates (installed as ``goalcover_hf.card_templates``)."""
