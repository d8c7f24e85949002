"""Reward Model Studio: builds the Gradio app and serves it (locally or as a Hugging Face Space)."""

from rm_demo.settings import Settings

if Settings.from_env().zero_gpu:  # ZeroGPU: spaces patches torch as it is imported, before anything uses it
    import spaces  # noqa: F401

from rm_demo.app import main  # noqa: E402

if __name__ == "__main__":
    main()
