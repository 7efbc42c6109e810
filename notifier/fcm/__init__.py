"""Step 5, FCM: the only package that speaks to Firebase. It turns a
:class:`~notifier.fcm.types.PushAlert` and its targets into HTTP v1 requests and returns one
typed outcome per device.
"""
