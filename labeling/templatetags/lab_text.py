from django import template

from labeling.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str):
    """Model output rendered as markdown and sanitised (``labeling.rendering``)."""
    return render_markdown(text or "")
