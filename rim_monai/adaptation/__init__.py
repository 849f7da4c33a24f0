"""rim_monai.adaptation"""
