"""The Open Inference Protocol (KServe V2, with Triton's extensions), framework-free.

``tensors``: datatypes and the tensor codec (JSON data, binary tensor data, BYTES
length prefixes); ``messages``: an inference request and response, as REST and gRPC
both carry them; ``classification``: Triton's ``class_count``; ``inference``: running
a request on the served models (the same batchers as the friendly routes);
``describe``: server and model metadata and Triton's model configuration.
"""
