"""The Gradio app for shoppers and customer-service agents (issue #8)."""
