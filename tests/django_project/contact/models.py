from django.db import models


class Message(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField()
    body = models.TextField()
    confirmed_at = models.DateTimeField(null=True)  # set by the job that sent the e-mail
