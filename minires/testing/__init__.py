"""Tools to check minires, kept out of the library itself.

    strict_device    a strict stand-in for a GPU device: NumPy underneath, CuPy's refusals on
                     top (no implicit conversion to the host), every operation counted
    torch_reference  the course's ResNet50_layer4 in PyTorch: the oracle the parity tests and
                     benchmarks compare minires with (imports torch)
    import_graph     the graph of minires's imports of its own modules, and its cycle check:
                     python -m minires.testing.import_graph

The tests and ``benchmarks/`` import these by name (``from minires.testing import
strict_device``). ``import minires`` imports none of them, and so never imports torch.
"""
