"""Reward Model Studio: builds the Gradio app and serves it (locally or as a Hugging Face Space)."""

from rm_demo.app import main

if __name__ == "__main__":
    main()
