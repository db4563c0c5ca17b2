"""HAFEM study: FER datasets, face preprocessing, hybrid model, compound loss, explanations, speed."""
