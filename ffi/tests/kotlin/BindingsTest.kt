// The generated Kotlin bindings on the JVM against a running Loopwork server: the technician's
// offline day and the owner's confirmation, as an Android app would drive them.
//
// Run by tests/tests/bindings.rs, which starts the server, builds the library, generates the
// bindings and compiles this file with them. Exits non-zero on the first failed check.

package com.loopwork.test

import com.loopwork.core.Channel
import com.loopwork.core.ChangeObserver
import com.loopwork.core.Kind
import com.loopwork.core.Location
import com.loopwork.core.NewOrderInput
import com.loopwork.core.UploadObserver
import com.loopwork.core.UploadStatus
import com.loopwork.core.Grade
import com.loopwork.core.HttpHeader
import com.loopwork.core.HttpResponse
import com.loopwork.core.ListFilter
import com.loopwork.core.Loopwork
import com.loopwork.core.LoopworkException
import com.loopwork.core.Role
import com.loopwork.core.Status
import com.loopwork.core.TimelineEvent
import com.loopwork.core.Transport
import com.loopwork.core.TransportException
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.nio.file.Files
import java.time.Duration
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.system.exitProcess

const val PASSWORD = "loopwork-demo"

/** The JDK's HTTP client as the host transport; `online = false` is a basement with no signal. */
class JdkTransport : Transport {
    @Volatile var online = true
    private val client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()

    override fun send(request: com.loopwork.core.HttpRequest): HttpResponse {
        if (!online) throw TransportException.Failed("no signal")
        val builder = HttpRequest.newBuilder(URI.create(request.url)).timeout(Duration.ofSeconds(30))
        request.headers.forEach { builder.header(it.name, it.value) }
        val body = if (request.body.isEmpty()) HttpRequest.BodyPublishers.noBody()
        else HttpRequest.BodyPublishers.ofByteArray(request.body)
        builder.method(request.method, body)
        try {
            val response = client.send(builder.build(), java.net.http.HttpResponse.BodyHandlers.ofByteArray())
            val headers = response.headers().map().flatMap { (name, values) -> values.map { HttpHeader(name, it) } }
            return HttpResponse(response.statusCode().toUShort(), headers, response.body())
        } catch (e: java.io.IOException) {
            throw TransportException.Failed(e.toString())
        }
    }
}

class Progress : UploadObserver {
    val calls = CopyOnWriteArrayList<Triple<String, ULong, ULong>>()
    override fun uploadProgress(sha256: String, sent: ULong, total: ULong) {
        calls.add(Triple(sha256, sent, total))
    }
}

/** A PNG drawn with the JDK: a signature's dark stroke on white, or a photo's noise. */
fun png(width: Int, height: Int, noise: Boolean): ByteArray {
    val image = java.awt.image.BufferedImage(width, height, java.awt.image.BufferedImage.TYPE_INT_RGB)
    val random = java.util.Random(7)
    for (x in 0 until width) for (y in 0 until height) {
        val stroke = Math.abs(y - height / 2 - (Math.sin(x / 15.0) * height / 4).toInt()) < 3
        image.setRGB(x, y, if (noise) random.nextInt(0xffffff) else if (stroke) 0x14143c else 0xffffff)
    }
    val out = java.io.ByteArrayOutputStream()
    javax.imageio.ImageIO.write(image, "png", out)
    return out.toByteArray()
}

/** An office call on the server's JSON API (the admin console's). */
fun api(server: String, method: String, path: String, token: String?, body: String?): String {
    val request = HttpRequest.newBuilder(URI.create(server + path)).header("content-type", "application/json")
    if (token != null) request.header("authorization", "Bearer $token")
    request.method(method, if (body == null) HttpRequest.BodyPublishers.noBody() else HttpRequest.BodyPublishers.ofString(body))
    val response = HttpClient.newHttpClient().send(request.build(), java.net.http.HttpResponse.BodyHandlers.ofString())
    check(response.statusCode() < 300, "$method $path answered ${response.statusCode()}: ${response.body()}")
    return response.body()
}

class Recorder : ChangeObserver {
    val calls = CopyOnWriteArrayList<Pair<List<String>, Boolean>>()
    override fun ordersChanged(orderIds: List<String>, fromSync: Boolean) {
        calls.add(orderIds to fromSync)
    }
}

fun check(condition: Boolean, what: String) {
    if (!condition) {
        System.err.println("FAILED: $what")
        exitProcess(1)
    }
    println("ok: $what")
}

inline fun <reified E : Throwable> expect(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) {
            println("ok: $what -> ${e::class.simpleName}")
            return e
        }
        System.err.println("FAILED: $what threw ${e::class.qualifiedName}: $e")
        exitProcess(1)
    }
    System.err.println("FAILED: $what did not throw ${E::class.simpleName}")
    exitProcess(1)
}

fun main() {
    val server = System.getenv("LOOPWORK_SERVER_URL") ?: error("LOOPWORK_SERVER_URL is not set")
    val root = Files.createTempDirectory("loopwork-kotlin")

    val techNet = JdkTransport()
    val tech = Loopwork.open(root.resolve("tech").toString(), techNet)
    expect<LoopworkException.NotSignedIn>("a call before sign-in") { tech.listOrders(ListFilter()) }
    expect<LoopworkException.NotSignedIn>("a wrong password") { tech.signIn(server, "wang", "nope", "Pixel") }
    val session = tech.signIn(server, "wang", PASSWORD, "Pixel 8")
    check(session.role == Role.TECHNICIAN, "the technician is signed in as a technician")
    val heard = Recorder()
    tech.setObserver(heard)
    tech.sync()
    check(heard.calls.any { it.second }, "the observer heard the first sync")

    val order = tech.listOrders(ListFilter(assignedToMe = true, openOnly = true)).single()
    check(order.status == Status.ASSIGNED, "the assigned order arrived")
    check(order.nextDeadlineMs != null, "it has a deadline")

    // The plant room: no signal.
    techNet.online = false
    tech.accept(order.id)
    tech.arrive(order.id)
    tech.startWork(order.id)
    tech.addNote(order.id, "更换角阀,已试水无渗漏")
    tech.logTime(order.id, System.currentTimeMillis() - 3_600_000, System.currentTimeMillis())
    tech.complete(order.id, "已修复")
    expect<LoopworkException.Offline>("a sync with no signal") { tech.sync() }
    expect<LoopworkException.NotPermitted>("a technician setting the grade") { tech.setGrade(order.id, Grade.CRITICAL) }
    check(tech.syncStatus().pendingUploads >= 6uL, "six changes wait for upload")
    val offline = tech.getOrder(order.id)
    check(offline.summary.status == Status.AWAITING_CONFIRMATION, "completed offline")
    check(offline.countdown.respondedAtMs != null, "the countdown knows the response time")
    expect<LoopworkException.Offline>("the owner's contact needs signal") { tech.contact(order.id) }

    // Signal again.
    techNet.online = true
    val report = tech.sync()
    check(report.acknowledged >= 6uL, "the server acknowledged the offline work")
    check(tech.syncStatus().pendingUploads == 0uL, "nothing left to upload")
    check(tech.contact(order.id).phone == "138****8005", "the owner's phone is masked")

    val owner = Loopwork.open(root.resolve("owner").toString(), JdkTransport())
    owner.signIn(server, "yezhu1502", PASSWORD, "iPhone")
    owner.sync()
    check(owner.getOrder(order.id).summary.status == Status.AWAITING_CONFIRMATION, "the owner sees the completion")
    expect<LoopworkException.NotPermitted>("a rating of 6") { owner.confirm(order.id, 6u, null) }
    owner.confirm(order.id, 5u, "很满意")
    owner.sync()

    heard.calls.clear()
    tech.sync()
    check(heard.calls.any { it.second && order.id in it.first }, "the observer heard the confirmation arrive")
    for ((who, app) in listOf("technician" to tech, "owner" to owner)) {
        val done = app.getOrder(order.id)
        check(done.summary.status == Status.CONFIRMED, "the $who sees the order confirmed")
        check(done.rating == 5.toUByte() && done.ratingComment == "很满意", "the $who sees the rating")
        check(done.notes.single().text == "更换角阀,已试水无渗漏", "the $who sees the note")
    }
    val actions = tech.timeline(order.id).mapNotNull { (it.event as? TimelineEvent.Transition)?.action }
    check(actions == listOf("assign", "accept", "arrive", "start", "complete", "confirm"), "the timeline: $actions")

    // Threads: list screens stay responsive on other threads while syncs run.
    val failures = CopyOnWriteArrayList<Throwable>()
    val threads = (1..8).map { i ->
        Thread {
            try {
                repeat(20) {
                    if (i % 2 == 0) tech.sync() else tech.listOrders(ListFilter())
                }
            } catch (e: Throwable) {
                failures.add(e)
            }
        }
    }
    threads.forEach { it.start() }
    threads.forEach { it.join() }
    check(failures.isEmpty(), "eight threads syncing and listing at once: $failures")

    // The company requires the owner's signature on repairs: a new order, signed on the phone.
    val login = """{"login":"admin","password":"$PASSWORD","device_name":"console"}"""
    val admin = Regex("\"token\":\"([^\"]+)\"").find(api(server, "POST", "/api/v1/login", null, login))!!.groupValues[1]
    api(server, "PUT", "/api/v1/settings/signature-rules", admin, """{"rules":[{"kind":"repair","require":"signature"}]}""")
    val desk = Loopwork.open(root.resolve("desk").toString(), JdkTransport())
    desk.signIn(server, "kefu", PASSWORD, "Desk")
    val signedId = desk.createOrder(
        NewOrderInput(
            Kind.REPAIR, "water_electric", Grade.MINOR, Channel.HOTLINE,
            Location("hy-garden", "3", "3-1502", null), "阳台地漏堵塞", owner.session()!!.userId, null,
        ),
    )
    desk.assign(signedId, session.userId)
    desk.sync()
    var required = false
    for (attempt in 1..100) {
        tech.sync()
        required = tech.getOrder(signedId).signatureRequired
        if (required) break
        Thread.sleep(200)
    }
    check(required, "the server recorded that the order needs the owner's signature")
    techNet.online = false
    tech.accept(signedId)
    tech.arrive(signedId)
    tech.startWork(signedId)
    val photo = png(300, 200, true)
    val photoSha = tech.attachPhoto(signedId, photo, "image/png", "堵塞的地漏")
    val refused = expect<LoopworkException.NotPermitted>("completing without the owner's signature") {
        tech.complete(signedId, null)
    }
    check(refused.code == "signature_required", "refused as signature_required: ${refused.code}")
    val signature = png(240, 90, false)
    val signatureSha = tech.completeSigned(signedId, signature, "业主签字确认")
    check(tech.getOrder(signedId).summary.status == Status.AWAITING_CONFIRMATION, "completed with the signature, offline")
    techNet.online = true
    tech.sync()
    val progress = Progress()
    tech.setUploadObserver(progress)
    val uploaded = tech.uploadAttachments()
    check(uploaded.uploaded == 2u && uploaded.pending == 0u, "the photo and the signature went up: $uploaded")
    check(progress.calls.last() == Triple(signatureSha, signature.size.toULong(), signature.size.toULong()), "progress reached the end")
    check(tech.attachments(signedId).all { it.upload == UploadStatus.Uploaded }, "both show as uploaded")
    owner.sync()
    val kinds = owner.attachments(signedId).map { it.kind to it.sha256 }
    check(kinds == listOf("photo" to photoSha, "signature" to signatureSha), "the owner's phone lists them: $kinds")
    val fetched = Files.readAllBytes(java.nio.file.Path.of(owner.attachmentFile(signedId, signatureSha, false)))
    check(fetched.size > 100 && fetched.copyOfRange(1, 4).decodeToString() == "PNG", "the owner's phone fetched the signature")
    val signedAt = owner.timeline(signedId).mapNotNull { it.event as? TimelineEvent.Transition }.single { it.action == "complete" }
    check(signedAt.signature == signatureSha, "the completion names the signature")
    desk.close()

    tech.signOut(true)
    check(tech.session() == null, "signed out")
    check(!Files.exists(root.resolve("tech").resolve("loopwork.db")), "the technician's data is wiped")
    tech.close()
    owner.close()
    println("all Kotlin binding checks passed")
}
