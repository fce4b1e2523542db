import pytest

from assistant.prompts import PromptError, render


def test_policy_prompt_renders_with_its_variables():
    text = render("retail_policy.v1", store_name="tau-retail")
    assert "tau-retail" in text and "$" not in text
    assert "find_user_id_by_email" in text and "transfer_to_human_agents" in text


def test_missing_variable_and_unknown_prompt_are_errors():
    with pytest.raises(PromptError, match="needs variable 'store_name'"):
        render("retail_policy.v1")
    with pytest.raises(PromptError, match="unknown prompt 'nope'"):
        render("nope")
