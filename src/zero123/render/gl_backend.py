"""OpenGL backend: moderngl on a headless EGL context (Mesa llvmpipe on a CPU-only machine).

Same camera, shading and output as :mod:`zero123.render.torch_backend`; anti-aliasing by MSAA
(the resolved colour is premultiplied by coverage and un-premultiplied here). ``moderngl`` is
imported lazily; without it, or without EGL, :class:`GLRenderer` raises ``RuntimeError`` with the
packages to install.
"""

from __future__ import annotations

import numpy as np

from ..camera import focal_length_px
from .mesh import Light, RenderMesh

_VERTEX_SHADER = """
#version 330
uniform mat4 mvp;
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_color;
in vec2 in_uv;
in float in_layer;
out vec3 v_pos;
out vec3 v_normal;
out vec3 v_color;
out vec2 v_uv;
flat out float v_layer;
void main() {
    v_pos = in_pos;
    v_normal = in_normal;
    v_color = in_color;
    v_uv = in_uv;
    v_layer = in_layer;
    gl_Position = mvp * vec4(in_pos, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec3 cam_center;
uniform vec3 light_dir;
uniform float light_intensity;
uniform float ambient;
uniform sampler2DArray tex;
in vec3 v_pos;
in vec3 v_normal;
in vec3 v_color;
in vec2 v_uv;
flat in float v_layer;
out vec4 f_color;
void main() {
    vec3 n = normalize(v_normal);
    if (dot(n, cam_center - v_pos) < 0.0) n = -n;
    float lambert = max(dot(n, normalize(light_dir)), 0.0);
    vec3 albedo = v_color;
    if (v_layer >= 0.0) albedo *= texture(tex, vec3(v_uv, v_layer)).rgb;
    f_color = vec4(albedo * (ambient + light_intensity * lambert), 1.0);
}
"""

_INSTALL_HINT = (
    "the 'gl' render backend needs moderngl (pip install 'zero123[gl]') and a headless EGL driver "
    "(Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri libegl-mesa0); use backend='torch' otherwise"
)


def gl_available() -> bool:
    """True when a moderngl EGL context can be created here."""
    try:
        ctx = _create_context()
    except RuntimeError:
        return False
    ctx.release()
    return True


def _create_context():
    try:
        import moderngl
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise RuntimeError(f"{_INSTALL_HINT} ({e})") from e
    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as e:  # pragma: no cover - depends on the machine
        raise RuntimeError(f"{_INSTALL_HINT} (EGL context failed: {e})") from e


def projection_matrix(fov_deg: float, near: float = 0.05, far: float = 50.0) -> np.ndarray:
    """OpenGL perspective matrix for a square image (same axes as Blender's camera: -Z forward, +Y up).

    The focal length in normalised device coordinates is the pixel focal length of an image 2 units
    wide (NDC spans [-1, 1]), so both backends share :func:`zero123.camera.focal_length_px`.
    """
    f = focal_length_px(fov_deg, 2)
    return np.array([
        [f, 0, 0, 0],
        [0, f, 0, 0],
        [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
        [0, 0, -1, 0],
    ], dtype=np.float64)


class GLRenderer:
    """Render :class:`RenderMesh` views with OpenGL 3.3 on EGL (one context per process)."""

    backend = "gl"

    def __init__(self, image_size: int = 256, fov_deg: float = 49.13, samples: int = 4):
        import moderngl  # noqa: F401  (checked by _create_context)

        self.image_size = int(image_size)
        self.fov_deg = float(fov_deg)
        self.ctx = _create_context()
        self.samples = min(int(samples), self.ctx.max_samples)
        self._prog = self.ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)
        self._proj = projection_matrix(self.fov_deg)
        self._fbos: dict[int, tuple] = {}

    def _framebuffers(self, tiles: int):
        """MSAA + resolved framebuffers holding ``tiles`` views side by side (one resolve, one read)."""
        if tiles not in self._fbos:
            n = self.image_size
            size = (n * tiles, n)
            msaa = self.ctx.framebuffer(
                color_attachments=[self.ctx.renderbuffer(size, 4, samples=self.samples)],
                depth_attachment=self.ctx.depth_renderbuffer(size, samples=self.samples),
            )
            resolved = self.ctx.framebuffer(color_attachments=[self.ctx.renderbuffer(size, 4)])
            self._fbos[tiles] = (msaa, resolved)
        return self._fbos[tiles]

    def close(self) -> None:
        self.ctx.release()

    def render(self, mesh: RenderMesh, world_to_cams: np.ndarray, light: Light = Light()) -> np.ndarray:
        """Render ``N`` views; same arguments and result as :meth:`TorchRenderer.render`."""
        import moderngl

        ctx = self.ctx
        world_to_cams = np.asarray(world_to_cams, np.float64).reshape(-1, 3, 4)
        data = np.concatenate([mesh.vertices, mesh.normals, mesh.colors, mesh.uvs,
                               mesh.texture_index[:, None].astype(np.float32)], axis=1).astype("f4")
        vbo = ctx.buffer(data.tobytes())
        ibo = ctx.buffer(mesh.faces.astype("i4").tobytes())
        layers, s = mesh.textures.shape[0], mesh.textures.shape[1]
        # GL rows start at the bottom: flip so that v=0 is the bottom of the stored image
        tex = ctx.texture_array((s, s, layers), 3, np.ascontiguousarray(mesh.textures[:, ::-1]).tobytes())
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        tex.repeat_x = tex.repeat_y = True
        vao = ctx.vertex_array(self._prog, [(vbo, "3f 3f 3f 2f 1f", "in_pos", "in_normal", "in_color", "in_uv", "in_layer")],
                               index_buffer=ibo, index_element_size=4)
        try:
            tex.use(0)
            self._prog["tex"].value = 0
            d = np.asarray(light.direction, np.float64)
            self._prog["light_dir"].value = tuple(d / (np.linalg.norm(d) + 1e-12))
            self._prog["light_intensity"].value = float(light.intensity)
            self._prog["ambient"].value = float(light.ambient)
            ctx.enable(moderngl.DEPTH_TEST)
            ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
            n = self.image_size
            max_tiles = max(1, 4096 // n)
            out = np.empty((len(world_to_cams), n, n, 4), np.uint8)
            for start in range(0, len(world_to_cams), max_tiles):
                batch = world_to_cams[start:start + max_tiles]
                msaa, resolved = self._framebuffers(len(batch))
                msaa.use()
                msaa.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
                for k, m in enumerate(batch):
                    view = np.eye(4)
                    view[:3] = m
                    mvp = self._proj @ view
                    self._prog["mvp"].write(mvp.T.astype("f4").tobytes())  # column-major
                    self._prog["cam_center"].value = tuple(-m[:, :3].T @ m[:, 3])
                    msaa.viewport = (k * n, 0, n, n)
                    vao.render(moderngl.TRIANGLES)
                ctx.copy_framebuffer(resolved, msaa)
                raw = np.frombuffer(resolved.read(components=4), np.uint8).reshape(n, len(batch), n, 4)
                out[start:start + len(batch)] = _unpremultiply(raw[::-1].transpose(1, 0, 2, 3))
        finally:
            vao.release()
            tex.release()
            ibo.release()
            vbo.release()
        return out


def _unpremultiply(img: np.ndarray) -> np.ndarray:
    """Straight RGBA from premultiplied uint8 RGBA; only partly covered pixels need work."""
    out = np.array(img, np.uint8)
    alpha = out[..., 3]
    out[alpha == 0] = 0
    edge = (alpha > 0) & (alpha < 255)
    if edge.any():
        px = out[edge].astype(np.float32)
        px[:, :3] = np.minimum(px[:, :3] * 255.0 / px[:, 3:4] + 0.5, 255.0)
        out[edge] = px.astype(np.uint8)
    return out
