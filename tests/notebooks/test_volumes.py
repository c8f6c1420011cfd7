"""The volumes page: sizes, users, and no deleting a volume in use."""

from notebooks.models import Notebook, Volume


def test_it_lists_volumes_with_their_users(login, viewer, profile):
    workspace = Volume.objects.create(profile=profile, name="ws", size="5Gi")
    data = Volume.objects.create(profile=profile, name="datasets", size="20Gi")
    Volume.objects.create(profile=profile, name="spare", size="1Gi")
    notebook = Notebook.objects.create(profile=profile, name="nb", image="x", workspace=workspace)
    notebook.data_mounts.create(volume=data, mount_path="/data")
    page = login(viewer).get("/ns/team-a/volumes/").content.decode()
    assert "20Gi" in page and "(workspace)" in page and "at /data" in page and "unused" in page
    assert "Delete" not in page  # viewers don't delete


def test_it_refuses_to_delete_a_volume_in_use(login, member, profile):
    workspace = Volume.objects.create(profile=profile, name="ws")
    Notebook.objects.create(profile=profile, name="nb", image="x", workspace=workspace)
    page = login(member).post("/ns/team-a/volumes/ws/delete/", follow=True)
    assert b"used by nb" in page.content
    assert Volume.objects.filter(name="ws").exists()


def test_it_deletes_an_unused_volume_and_its_files(login, member, profile):
    volume = Volume.objects.create(profile=profile, name="old")
    volume.local_path.mkdir(parents=True)
    (volume.local_path / "file.txt").write_text("x")
    login(member).post("/ns/team-a/volumes/old/delete/")
    assert not Volume.objects.exists()
    assert not volume.local_path.exists()


def test_it_hides_volumes_from_strangers(login, stranger, profile):
    Volume.objects.create(profile=profile, name="ws")
    client = login(stranger)
    assert client.get("/ns/team-a/volumes/").status_code == 404
    assert client.post("/ns/team-a/volumes/ws/delete/").status_code == 404
