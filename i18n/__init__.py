"""The Chinese edition: glossary (glossary.yml), translation records (translations.py), the build."""
