"""Custom Vision v3.0-v3.4-preview: the Training and Prediction APIs (docs/customvision.md)."""
