import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.kerashrf.ser.app"
    compileSdk = 36

    defaultConfig {
        applicationId = "org.kerashrf.ser"
        minSdk = 24
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    androidResources {
        // Keep the model uncompressed in the APK (LiteRT reads it as one buffer).
        noCompress += "tflite"
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation(project(":core"))
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.appcompat)
    implementation(libs.litert)
}

/**
 * Copies `model_int8.tflite` and `model_meta.json` of a keras-hrf export into generated assets,
 * so the model is never committed and always comes from one export (the app also checks the
 * model's SHA-256 against the meta). Fails with what to do when the export is missing.
 */
abstract class CopyModelAssets : DefaultTask() {
    /** The export folder, as given (for messages). */
    @get:Input
    abstract val exportPath: Property<String>

    /** The two files copied (missing files fail the task with a clear message). */
    @get:InputFiles
    @get:PathSensitive(PathSensitivity.NAME_ONLY)
    abstract val modelFiles: ConfigurableFileCollection

    /** Set by AGP: the generated assets folder of the variant. */
    @get:OutputDirectory
    abstract val outputDirectory: DirectoryProperty

    @TaskAction
    fun copy() {
        val missing = modelFiles.files.filter { !it.isFile }
        if (missing.isNotEmpty()) {
            throw GradleException(
                "keras-hrf export not found: ${missing.joinToString { it.path }} missing.\n" +
                    "Create one (from the repository root): `keras-hrf demo --quick` writes " +
                    "demo_out/runs/light_hrf/device, or `keras-hrf convert RUN_DIR --out DIR`.\n" +
                    "Then set kerasHrfExport in tflite/android/gradle.properties or pass " +
                    "-PkerasHrfExport=/path/to/export (now: '${exportPath.get()}').",
            )
        }
        val out = outputDirectory.get().asFile
        out.deleteRecursively()
        out.mkdirs()
        modelFiles.files.forEach { it.copyTo(out.resolve(it.name), overwrite = true) }
    }
}

val kerasHrfExport: String = providers.gradleProperty("kerasHrfExport").getOrElse("../../demo_out/runs/light_hrf/device")
val exportDir: File = rootProject.file(kerasHrfExport)

val copyModelAssets = tasks.register<CopyModelAssets>("copyModelAssets") {
    group = "keras-hrf"
    description = "Copies model_int8.tflite and model_meta.json from the keras-hrf export into the app's assets."
    exportPath.set(kerasHrfExport)
    modelFiles.from(exportDir.resolve("model_int8.tflite"), exportDir.resolve("model_meta.json"))
}

androidComponents {
    onVariants { variant ->
        variant.sources.assets?.addGeneratedSourceDirectory(copyModelAssets, CopyModelAssets::outputDirectory)
    }
}
