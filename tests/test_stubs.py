from autograder.stubs import PLACEHOLDER, STUB, name_stubs


def test_stub_takes_the_enclosing_function_name():
    src = f"def sse(a, b):\n    '''doc'''\n    {STUB}\n\ndef mse(a, b):\n    {STUB}\n"
    out = name_stubs(src, "fallback")
    assert 'NotImplementedError("sse: ' in out
    assert 'NotImplementedError("mse: ' in out
    assert PLACEHOLDER not in out


def test_stub_in_a_method_names_the_class_and_the_method():
    src = f"class Linear:\n    def forward(self, X):\n        {STUB}\n"
    assert 'NotImplementedError("Linear.forward: ' in name_stubs(src, "x")


def test_stub_outside_any_definition_uses_the_fallback():
    assert 'NotImplementedError("answer_cell: ' in name_stubs(STUB, "answer_cell")
