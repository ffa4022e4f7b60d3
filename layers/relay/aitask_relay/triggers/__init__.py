"""The triggers: each knows one event shape, turns it into a use case's input, and shapes the result into the
platform's answer; the work itself is the use cases'.
"""
