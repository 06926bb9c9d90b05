"""The guidelines partial's read (templates/labeling/_guidelines.html): every page that
includes it passes only ``campaign`` and ``question``."""

from django import template

from labeling.onboarding_selectors import guidelines_view

register = template.Library()


@register.simple_tag
def campaign_guidelines(campaign):
    """The current guidelines version and its examples (``GuidelinesView``)."""
    return guidelines_view(campaign)
