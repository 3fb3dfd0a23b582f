"""The conversation: one inbound text, understood, acted on through Smartrr, and answered;
and the inbox job that feeds it.
"""
