"""Explanations: GradCAM and friends, faithfulness checks, figures."""
