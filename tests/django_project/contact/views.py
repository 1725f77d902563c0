from django import forms
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import Message
from .tasks import send_confirmation


class ContactForm(forms.ModelForm):
    class Meta:
        model = Message
        fields = ["name", "email", "body"]


@csrf_exempt
def contact(request: HttpRequest) -> HttpResponse:
    """Save the message and answer at once; the e-mail goes out in a job,
    enqueued once the message is committed (never for a rolled-back one)."""
    form = ContactForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    with transaction.atomic():
        message = form.save()
        job = send_confirmation.enqueue_on_commit(message.pk)
    return JsonResponse({"message": message.pk, "job": job.id}, status=201)
